package pgsim_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/gateway/pgsim"
)

// register walks the billing-auth window with a card number and returns where pgsim sent the browser.
func (b *bundle) register(t *testing.T, customerKey, number string) (*http.Response, string) {
	t.Helper()
	form := url.Values{"clientKey": {pgsim.DefaultClientKey}, "customerKey": {customerKey},
		"successUrl": {"https://shop.example/c/tok/card/success?gateway=sim"}, "failUrl": {"https://shop.example/c/tok/card/fail"},
		"cardNumber": {number}, "expiry": {"12/30"}}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.PostForm(b.srv.URL+"/billing-auth", form)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	return res, string(body)
}

// The registration page redirects to successUrl exactly as Toss does (customerKey and authKey appended to
// the URL's own query), the authKey issues a billing key whose card behaves as the test card says, and only
// under the customerKey it was made for.
func TestRegistrationPageIssuesAnAuthKeyBoundToItsCustomer(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{})

	res, err := http.Get(b.srv.URL + "/billing-auth?" + url.Values{"clientKey": {pgsim.DefaultClientKey}, "customerKey": {"cpk_abc"},
		"successUrl": {"https://shop.example/ok"}, "failUrl": {"https://shop.example/fail"}}.Encode())
	require.NoError(t, err)
	page, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, string(page), `name="cardNumber"`)
	// The form's answer is a redirect to the merchant: a browser follows it only when form-action allows
	// the merchant's origin (Chromium holds a form's redirects to form-action too).
	require.Contains(t, res.Header.Get("Content-Security-Policy"), "form-action 'self' https://shop.example;")
	require.Contains(t, string(page), "4242424242424242")

	res, _ = b.register(t, "cpk_abc", "4000 0000 0000 9995")
	require.Equal(t, http.StatusFound, res.StatusCode)
	loc, err := url.Parse(res.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "shop.example", loc.Host)
	require.Equal(t, "/c/tok/card/success", loc.Path)
	require.Equal(t, "sim", loc.Query().Get("gateway"), "the successUrl's own query is kept")
	require.Equal(t, "cpk_abc", loc.Query().Get("customerKey"))
	authKey := loc.Query().Get("authKey")
	require.True(t, strings.HasPrefix(authKey, "sim_auth_"), authKey)
	require.Equal(t, 1, b.sim.Registrations())

	// Another customerKey cannot use it.
	a := b.call(t, "POST", "/v1/billing/authorizations/issue", "", map[string]string{"authKey": authKey, "customerKey": "cpk_other"})
	require.Equal(t, http.StatusBadRequest, a.status)
	require.Equal(t, "NOT_MATCHES_CUSTOMER_KEY", a.body["code"])

	// Its own can, and the card declines as 4000000000009995 does.
	bk := b.issue(t, "cpk_abc", authKey)
	for _, k := range b.sim.BillingKeys() {
		if k.BillingKey == bk {
			require.Equal(t, pgsim.BehaviorInsufficient, k.Behavior)
			require.Equal(t, "400000*******995", k.Number)
		}
	}
	require.Equal(t, bk, b.issue(t, "cpk_abc", authKey), "issuing again for the same authKey is the same billing key")
}

// A card refused at registration goes to failUrl with Toss's code and message; a number that fails the
// Luhn check stays on the form; cancel goes to failUrl; a wrong client key or customerKey shows no form.
func TestRegistrationPageRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{})

	res, _ := b.register(t, "cpk_abc", "4000000000000002")
	require.Equal(t, http.StatusFound, res.StatusCode)
	loc, _ := url.Parse(res.Header.Get("Location"))
	require.Equal(t, "/c/tok/card/fail", loc.Path)
	require.Equal(t, "INVALID_REJECT_CARD", loc.Query().Get("code"))
	require.NotEmpty(t, loc.Query().Get("message"))

	res, body := b.register(t, "cpk_abc", "4242424242424241")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, body, `id="error"`)
	require.Zero(t, b.sim.Registrations())

	form := url.Values{"clientKey": {pgsim.DefaultClientKey}, "customerKey": {"cpk_abc"}, "successUrl": {"https://shop.example/ok"},
		"failUrl": {"https://shop.example/fail"}, "cancel": {"1"}}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.PostForm(b.srv.URL+"/billing-auth", form)
	require.NoError(t, err)
	_ = res.Body.Close()
	loc, _ = url.Parse(res.Header.Get("Location"))
	require.Equal(t, "PAY_PROCESS_CANCELED", loc.Query().Get("code"))

	for _, q := range []url.Values{
		{"clientKey": {"test_ck_wrong"}, "customerKey": {"cpk_abc"}, "successUrl": {"https://a.example/"}, "failUrl": {"https://a.example/"}},
		{"clientKey": {pgsim.DefaultClientKey}, "customerKey": {"a b"}, "successUrl": {"https://a.example/"}, "failUrl": {"https://a.example/"}},
		{"clientKey": {pgsim.DefaultClientKey}, "customerKey": {"cpk_abc"}, "successUrl": {"javascript:alert(1)"}, "failUrl": {"https://a.example/"}},
	} {
		res, err := http.Get(b.srv.URL + "/billing-auth?" + q.Encode())
		require.NoError(t, err)
		page, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		require.Equal(t, http.StatusBadRequest, res.StatusCode, q.Encode())
		require.NotContains(t, string(page), `name="cardNumber"`)
	}
}

// The SDK stand-in defines TossPayments(clientKey).requestBillingAuth and points back at pgsim.
func TestSDKStandIn(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{})
	res, err := http.Get(b.srv.URL + "/js/v1/payment")
	require.NoError(t, err)
	js, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, res.Header.Get("Content-Type"), "javascript")
	require.Contains(t, string(js), "requestBillingAuth")
	require.Contains(t, string(js), strings.TrimPrefix(b.srv.URL, "http://"))
}
