package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// registration is what the page hands the gateway's SDK.
type registration struct {
	ClientKey, CustomerKey, SuccessURL, FailURL string
	SDK                                         string
}

var (
	sdkScript = regexp.MustCompile(`<script src="([^"]+)"></script>`)
	regField  = func(name string) *regexp.Regexp { return regexp.MustCompile(name + `: ("(?:[^"\\]|\\.)*")`) }
)

// registrationOf reads the change-card registration off the page.
func registrationOf(t *testing.T, body string) registration {
	t.Helper()
	var r registration
	for name, dst := range map[string]*string{"clientKey": &r.ClientKey, "customerKey": &r.CustomerKey, "successUrl": &r.SuccessURL, "failUrl": &r.FailURL} {
		m := regField(name).FindStringSubmatch(body)
		require.NotNil(t, m, "the page hands the SDK %s", name)
		require.NoError(t, json.Unmarshal([]byte(m[1]), dst), m[1])
	}
	m := sdkScript.FindStringSubmatch(body)
	require.NotNil(t, m, "the page loads the SDK")
	r.SDK = m[1]
	return r
}

// local turns a URL under BILLING_PUBLIC_URL (the default) into one on the test's server.
func (b pageBundle) local(u string) string {
	return b.env.URL + strings.TrimPrefix(u, "http://127.0.0.1:8080")
}

// registerAt submits pgsim's registration page as the SDK would have opened it, and returns where pgsim
// sends the browser.
func (b pageBundle) registerAt(t *testing.T, r registration, customerKey, number string) *url.URL {
	t.Helper()
	form := url.Values{"clientKey": {r.ClientKey}, "customerKey": {customerKey}, "successUrl": {r.SuccessURL}, "failUrl": {r.FailURL},
		"cardNumber": {number}}
	res, err := b.client.PostForm(b.env.App.SimURL+"/billing-auth", form)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusFound, res.StatusCode)
	u, err := url.Parse(res.Header.Get("Location"))
	require.NoError(t, err)
	return u
}

func (b pageBundle) keysAtVault(t *testing.T) []map[string]any {
	t.Helper()
	res := b.env.Do("GET", "/v1/customers/"+b.customer+"/billing-keys", testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	var list struct {
		Data []map[string]any `json:"data"`
	}
	res.Decode(t, &list)
	return list.Data
}

// The whole change-card loop over HTTP: the page hands pgsim's SDK the link's customerKey and our success
// and fail URLs; pgsim's registration page redirects back as Toss does; the success URL issues the billing
// key, makes it the default and retries the open invoice at once, which is paid with the new card. A
// reload of the success URL stores nothing more and charges nothing more.
func TestChangeCardIssuesTheKeyAndPaysTheOpenInvoice(t *testing.T) {
	t.Parallel()
	b := setupPage(t)

	status, body := b.get(t, b.link)
	require.Equal(t, 200, status, body)
	require.Contains(t, body, `id="change-card"`)
	reg := registrationOf(t, body)
	require.Equal(t, pgsim.DefaultClientKey, reg.ClientKey)
	require.Equal(t, b.env.App.SimURL+"/js/v1/payment", reg.SDK)
	require.Regexp(t, `^cpk_`, reg.CustomerKey)
	require.Equal(t, strings.TrimPrefix(b.link, b.env.URL), strings.TrimPrefix(strings.TrimSuffix(reg.SuccessURL, "/card/success?gateway=sim"), "http://127.0.0.1:8080"))
	res, err := b.client.Get(b.link)
	require.NoError(t, err)
	res.Body.Close()
	csp := res.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "script-src 'nonce-")
	require.Contains(t, csp, b.env.App.SimURL)

	old := b.keysAtVault(t)
	require.Len(t, old, 1)
	loc := b.registerAt(t, reg, reg.CustomerKey, "4242 4242 4242 4242")
	require.Equal(t, reg.CustomerKey, loc.Query().Get("customerKey"))
	require.NotEmpty(t, loc.Query().Get("authKey"))
	success := b.local(loc.String())

	res, err = b.client.Get(success)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	// card_paid, unless the retry outlasts the wait on a loaded machine (then the page says it is confirming).
	require.Regexp(t, `^`+regexp.QuoteMeta("http://127.0.0.1:8080"+strings.TrimPrefix(b.link, b.env.URL))+`\?done=card_(paid|pending)$`, res.Header.Get("Location"))
	require.Eventually(t, func() bool {
		return b.env.Do("GET", "/v1/invoices/"+b.invoice, testenv.ServiceToken, nil).JSON(t)["status"] == "paid"
	}, 30*time.Second, 50*time.Millisecond)
	keys := b.keysAtVault(t)
	require.Len(t, keys, 2)
	for _, k := range keys {
		require.Equal(t, k["id"] != old[0]["id"], k["is_default"], "the new card is the default: %v", k)
	}
	require.NotEqual(t, -1, indexOfCustomerKey(b.env.App.Sim.BillingKeys(), reg.CustomerKey), "the key was issued under the link's customerKey")
	charges := b.chargesOf(b.invoice)

	// The same redirect again: the same card, no second charge.
	res, err = b.client.Get(success)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Len(t, b.keysAtVault(t), 2)
	require.Equal(t, charges, b.chargesOf(b.invoice))

	status, body = b.get(t, b.link+"?done=card_paid")
	require.Equal(t, 200, status)
	require.Contains(t, body, "Your card was changed and the open invoice was paid")
	require.Contains(t, body, `id="paid-`+b.invoice+`"`)
	require.Contains(t, body, "424242*******242", "the new card is shown")
}

// The success URL waits for the new card's retry; when the retry is still in flight at the end of the
// wait, the page says the card is being charged (card_pending), never that it was declined. The decline
// that brought the customer to the page is not the new card's answer: under the test clock both attempts
// share an instant, so telling them apart by time (as the wait once did, breaking the tie by the random
// attempt id) said card_declined about half the time the retry was slower than the first look.
func TestChangeCardWhileTheRetryIsInFlightSaysPending(t *testing.T) {
	t.Parallel()
	var hold atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	b := setupPage(t, testenv.Options{App: app.Options{Hooks: billing.Hooks{BeforeCharge: func(string) error {
		if hold.Load() {
			<-release
		}
		return nil
	}}}})
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the Env stops: a held charge would block it
	_, body := b.get(t, b.link)
	reg := registrationOf(t, body)
	loc := b.registerAt(t, reg, reg.CustomerKey, "4242424242424242")

	hold.Store(true) // the new card's charge waits, committed, until the page has answered
	res, err := b.client.Get(b.local(loc.String()))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.True(t, strings.HasSuffix(res.Header.Get("Location"), "?done=card_pending"), res.Header.Get("Location"))
	require.Equal(t, "open", b.env.Do("GET", "/v1/invoices/"+b.invoice, testenv.ServiceToken, nil).JSON(t)["status"])
	_, page := b.get(t, b.link+"?done=card_pending")
	require.Contains(t, page, "we are charging it now")

	once.Do(func() { close(release) })
	require.Eventually(t, func() bool {
		return b.env.Do("GET", "/v1/invoices/"+b.invoice, testenv.ServiceToken, nil).JSON(t)["status"] == "paid"
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, 1, b.chargesOf(b.invoice))
}

func indexOfCustomerKey(keys []pgsim.BillingKey, ck string) int {
	for i, k := range keys {
		if k.CustomerKey == ck {
			return i
		}
	}
	return -1
}

// A redirect forged to attach a card through another customer's link is refused before the gateway is
// asked anything; an authKey made for another customerKey is refused by the gateway; nothing is stored
// and nothing charged either way.
func TestChangeCardRefusesAForgedRedirect(t *testing.T) {
	t.Parallel()
	b := setupPage(t)
	_, body := b.get(t, b.link)
	reg := registrationOf(t, body)

	// Mallory, another customer, registers her own card for her own customerKey.
	res := b.env.Do("POST", "/v1/customers", testenv.ServiceToken, map[string]any{"external_id": "page-m", "email": "m@example.com", "name": "Mallory"})
	require.Equal(t, 201, res.Status)
	malloryLink, err := b.env.App.Links.CustomerPage(t.Context(), res.JSON(t)["id"].(string))
	require.NoError(t, err)
	_, mbody := b.get(t, b.local(malloryLink))
	mreg := registrationOf(t, mbody)
	require.NotEqual(t, reg.CustomerKey, mreg.CustomerKey)
	mloc := b.registerAt(t, mreg, mreg.CustomerKey, "4242424242424242")

	// Her customerKey and authKey on the victim's success URL: refused, nothing issued.
	q := url.Values{"gateway": {"sim"}, "customerKey": {mreg.CustomerKey}, "authKey": {mloc.Query().Get("authKey")}}
	status, page := b.get(t, b.link+"/card/success?"+q.Encode())
	require.Equal(t, http.StatusForbidden, status, page)
	require.Contains(t, page, "does not belong to this link")

	// Her authKey under the victim's customerKey: the gateway refuses it.
	q.Set("customerKey", reg.CustomerKey)
	status, page = b.get(t, b.link+"/card/success?"+q.Encode())
	require.Equal(t, http.StatusUnprocessableEntity, status, page)
	require.Contains(t, page, "NOT_MATCHES_CUSTOMER_KEY")

	// No auth key, an unknown gateway: refused.
	status, _ = b.get(t, b.link+"/card/success?gateway=sim&customerKey="+url.QueryEscape(reg.CustomerKey))
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = b.get(t, b.link+"/card/success?gateway=stripe&customerKey="+url.QueryEscape(reg.CustomerKey)+"&authKey=x")
	require.Equal(t, http.StatusNotFound, status)

	require.Len(t, b.keysAtVault(t), 1, "no card was stored")
	require.Equal(t, "open", b.env.Do("GET", "/v1/invoices/"+b.invoice, testenv.ServiceToken, nil).JSON(t)["status"])
}

// A card the gateway refuses at registration comes back to the fail URL, which shows the gateway's own
// message; a card that registers but declines the charge says so.
func TestChangeCardFailuresSayWhatHappened(t *testing.T) {
	t.Parallel()
	b := setupPage(t)
	_, body := b.get(t, b.link)
	reg := registrationOf(t, body)

	loc := b.registerAt(t, reg, reg.CustomerKey, "4000000000000002")
	require.Equal(t, "/card/fail", loc.Path[strings.LastIndex(loc.Path, "/card/"):])
	status, page := b.get(t, b.local(loc.String()))
	require.Equal(t, 200, status)
	require.Contains(t, page, `id="error"`)
	require.Contains(t, page, "카드 사용이 거절되었습니다")
	require.Contains(t, page, "INVALID_REJECT_CARD")

	loc = b.registerAt(t, reg, reg.CustomerKey, "4000000000009995")
	res, err := b.client.Get(b.local(loc.String()))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.True(t, strings.HasSuffix(res.Header.Get("Location"), "?done=card_declined"), res.Header.Get("Location"))
	require.Equal(t, "open", b.env.Do("GET", "/v1/invoices/"+b.invoice, testenv.ServiceToken, nil).JSON(t)["status"])
	_, page = b.get(t, b.link+"?done=card_declined")
	require.Contains(t, page, "the payment was declined")
}
