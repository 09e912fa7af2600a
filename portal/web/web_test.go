package web_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

type pageBundle struct {
	env      *testenv.Env
	customer string
	invoice  string // the open initial invoice (the first charge declined)
	ck       string // the customer's key at the gateway
	link     string
	client   *http.Client
}

// setupPage leaves a customer with an open invoice: their card declined the first charge (incomplete).
func setupPage(t *testing.T, opts ...testenv.Options) pageBundle {
	t.Helper()
	env := testenv.New(t, opts...)
	adm, svc := testenv.AdminToken, testenv.ServiceToken
	res := env.Do("POST", "/v1/plans", adm, map[string]any{"code": "basic", "name": "Basic", "amount": "9900", "currency": "KRW", "interval": "month", "interval_count": 1})
	require.Equal(t, 201, res.Status, string(res.Body))
	plan := res.JSON(t)["id"].(string)
	res = env.Do("POST", "/v1/customers", svc, map[string]any{"external_id": "page-1", "email": "kim@example.com", "name": "김민수"})
	require.Equal(t, 201, res.Status, string(res.Body))
	cus := res.JSON(t)["id"].(string)
	ck := "ck-" + cus
	res = env.Do("POST", "/v1/customers/"+cus+"/billing-keys", svc, map[string]any{"gateway": "sim", "auth_key": "insufficient-1", "customer_key": ck})
	require.Equal(t, 201, res.Status, string(res.Body))
	res = env.Do("POST", "/v1/subscriptions", svc, map[string]any{"customer_id": cus, "plan_id": plan})
	require.Equal(t, 402, res.Status, string(res.Body))
	inv := res.JSON(t)["invoice_id"].(string)
	link, err := env.App.Links.CustomerPage(t.Context(), cus)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(link, "http://127.0.0.1:8080/c/"), link)
	// BILLING_PUBLIC_URL is the default; the test's server listens elsewhere.
	link = env.URL + strings.TrimPrefix(link, "http://127.0.0.1:8080")
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return pageBundle{env: env, customer: cus, invoice: inv, ck: ck, link: link, client: client}
}

func (b pageBundle) get(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := b.client.Get(u)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(body)
}

func (b pageBundle) post(t *testing.T, u string, form url.Values) *http.Response {
	t.Helper()
	res, err := b.client.PostForm(u, form)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b pageBundle) chargesOf(invoiceID string) int {
	n := 0
	for _, c := range b.env.App.Sim.Charges() {
		if strings.HasPrefix(c.OrderID, invoiceID+"-") {
			n++
		}
	}
	return n
}

func TestPayNowChargesOnceForADoubleClick(t *testing.T) {
	t.Parallel()
	b := setupPage(t)

	status, body := b.get(t, b.link)
	require.Equal(t, 200, status, body)
	require.Contains(t, body, "김민수")
	require.Contains(t, body, `id="open-`+b.invoice+`"`)
	require.Contains(t, body, "KRW 9,900")
	require.Regexp(t, `<td data-plan="plan_[a-z0-9]+">Basic</td>`, body, "the plan by its name")
	m := csrfField.FindStringSubmatch(body)
	require.NotNil(t, m)
	pay := b.link + "/invoices/" + b.invoice + "/pay"

	// Without the CSRF token nothing is charged.
	res := b.post(t, pay, url.Values{})
	require.Equal(t, 403, res.StatusCode)
	res = b.post(t, pay, url.Values{"csrf": {"not-the-token-not-the-token-not-the-token"}})
	require.Equal(t, 403, res.StatusCode)
	require.Equal(t, 0, b.chargesOf(b.invoice))

	// The customer's card works again; two clicks at once charge once.
	for _, k := range b.env.App.Sim.BillingKeys() {
		if k.CustomerKey == b.ck {
			require.NoError(t, b.env.App.Sim.SetBehavior(k.BillingKey, "ok"))
		}
	}
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = b.post(t, pay, url.Values{"csrf": {m[1]}}).StatusCode
		}()
	}
	wg.Wait()
	require.Equal(t, []int{303, 303}, codes)
	require.Equal(t, 1, b.chargesOf(b.invoice), "one charge for two clicks")

	res2 := b.env.Do("GET", "/v1/invoices/"+b.invoice, testenv.ServiceToken, nil)
	require.Equal(t, "paid", res2.JSON(t)["status"])
	status, body = b.get(t, b.link+"?done=paid")
	require.Equal(t, 200, status)
	require.Contains(t, body, `id="paid-`+b.invoice+`"`)
	require.NotContains(t, body, `id="open-`+b.invoice+`"`)

	// Its receipt downloads as a PDF; a third click is a no-op.
	res3, err := b.client.Get(b.link + "/invoices/" + b.invoice + "/receipt.pdf")
	require.NoError(t, err)
	pdf, _ := io.ReadAll(res3.Body)
	res3.Body.Close()
	require.Equal(t, 200, res3.StatusCode)
	require.Equal(t, "application/pdf", res3.Header.Get("Content-Type"))
	require.True(t, strings.HasPrefix(string(pdf), "%PDF-"))
	require.Equal(t, 303, b.post(t, pay, url.Values{"csrf": {m[1]}}).StatusCode)
	require.Equal(t, 1, b.chargesOf(b.invoice))
}

func TestTamperedAndExpiredLinksAreRefused(t *testing.T) {
	t.Parallel()
	b := setupPage(t)
	tok := b.link[strings.LastIndex(b.link, "/")+1:]
	base := b.link[:strings.LastIndex(b.link, "/")+1]

	// Another customer's link cannot reach this customer's invoice.
	res := b.env.Do("POST", "/v1/customers", testenv.ServiceToken, map[string]any{"external_id": "page-2", "email": "lee@example.com", "name": "Lee"})
	require.Equal(t, 201, res.Status)
	other, err := b.env.App.Links.Token(res.JSON(t)["id"].(string))
	require.NoError(t, err)
	status, body := b.get(t, base+other)
	require.Equal(t, 200, status)
	require.NotContains(t, body, b.invoice)
	status, _ = b.get(t, base+other+"/invoices/"+b.invoice+"/receipt.pdf")
	require.Equal(t, 404, status)

	// Altered tokens: refused, naming nobody.
	flip := []byte(tok)
	if flip[10] == 'A' {
		flip[10] = 'B'
	} else {
		flip[10] = 'A'
	}
	otherPayload, _, _ := strings.Cut(other, ".")
	_, mac, _ := strings.Cut(tok, ".")
	for _, bad := range []string{string(flip), otherPayload + "." + mac, tok[:len(tok)-2], "nonsense"} {
		status, body := b.get(t, base+bad)
		require.Equal(t, 404, status, bad)
		require.Contains(t, body, "This link is not valid")
		require.NotContains(t, body, "김민수")
	}

	// Past its time, the link says it expired and shows nothing of the account.
	res = b.env.Do("POST", "/v1/test-clock/advance", testenv.AdminToken, map[string]any{"by": "721h"})
	require.Equal(t, 200, res.Status, string(res.Body))
	status, body = b.get(t, b.link)
	require.Equal(t, 410, status)
	require.Contains(t, body, "This link has expired")
	require.NotContains(t, body, "김민수")
	require.NotContains(t, body, b.invoice)
}
