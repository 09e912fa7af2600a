package api_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

// forgedEvent is a payment-status event in the Toss wire format, as anyone can write one: Toss and sim
// events are not signed. i makes each a distinct event (its derived id covers createdAt).
func forgedEvent(order string, i int, pad int) string {
	return fmt.Sprintf(`{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2026-01-01T00:00:%02d.%06d",`+
		`"data":{"paymentKey":"forged_%d","orderId":%q,"status":"DONE","totalAmount":9900,"balanceAmount":9900,`+
		`"currency":"KRW","lastTransactionKey":"tx_%d","pad":%q}}`, i%60, i, i, order, i, strings.Repeat("x", pad))
}

// Each sending address has a bucket: once it is spent the answer is 429 with Retry-After, before the body
// is read, and nothing is stored. X-Forwarded-For names the sender only when the peer is a trusted proxy.
func TestWebhookRateLimitPerSource(t *testing.T) {
	t.Parallel()
	// 0.05 a second: a burst of one, the next token in 20 s (no test waits that long).
	env := testenv.New(t, testenv.Options{Env: map[string]string{"BILLING_WEBHOOK_RATE": "0.05"}})
	require.Equal(t, 200, env.Do("POST", "/webhooks/sim", "", forgedEvent("nobodys-1", 1, 0)).Status)
	res := env.Do("POST", "/webhooks/sim", "", forgedEvent("nobodys-1", 2, 0))
	require.Equal(t, 429, res.Status, string(res.Body))
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	require.Equal(t, "rate_limited", res.JSON(t)["code"])
	wait, err := strconv.Atoi(res.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.True(t, wait >= 1 && wait <= 20, "Retry-After %d", wait)
	// Anyone can write X-Forwarded-For: without trusted proxies it changes nothing.
	require.Equal(t, 429, env.Do("POST", "/webhooks/sim", "", forgedEvent("nobodys-1", 3, 0), "X-Forwarded-For: 203.0.113.9").Status)
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM webhook_inbox`), "a refused webhook stores nothing")
	// The API's own buckets are per token and untouched.
	require.Equal(t, 200, env.Do("GET", "/v1/plans", testenv.AdminToken, nil).Status)

	// Behind a trusted proxy (here: the test's own loopback), the forwarded address is the sender.
	proxied := testenv.New(t, testenv.Options{Env: map[string]string{"BILLING_WEBHOOK_RATE": "0.05",
		"BILLING_TRUSTED_PROXIES": "127.0.0.1,::1"}})
	post := func(i int, xff string) int {
		return proxied.Do("POST", "/webhooks/sim", "", forgedEvent("nobodys-2", i, 0), "X-Forwarded-For: "+xff).Status
	}
	require.Equal(t, 200, post(1, "203.0.113.9"))
	require.Equal(t, 429, post(2, "203.0.113.9"))
	// The client may prepend anything; the proxy appends what it saw, and that is what counts.
	require.Equal(t, 429, post(3, "198.51.100.1, 203.0.113.9"))
	require.Equal(t, 200, post(4, "203.0.113.10"))
	require.Equal(t, 2, proxied.QueryInt(`SELECT count(*) FROM webhook_inbox`))
}

// Webhook bodies are capped at 64 KiB (the API's other endpoints keep 1 MiB): a larger one is 413,
// declared or not, and stores nothing.
func TestWebhookBodyCap(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	fits := forgedEvent("nobodys-3", 1, 60<<10)
	require.Equal(t, 200, env.Do("POST", "/webhooks/sim", "", fits).Status)

	over := forgedEvent("nobodys-3", 2, 64<<10)
	res := env.Do("POST", "/webhooks/sim", "", over)
	require.Equal(t, 413, res.Status, string(res.Body))
	require.Equal(t, "body_too_large", res.JSON(t)["code"])
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))

	// Chunked (a reader of unknown length), with no Content-Length to refuse up front: reading stops at the cap.
	req, err := http.NewRequest("POST", env.URL+"/webhooks/sim", io.MultiReader(strings.NewReader(forgedEvent("nobodys-3", 3, 64<<10))))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, 413, resp.StatusCode)

	// The API's own limit is still API.md's 1 MiB.
	big := `{"name":"` + strings.Repeat("a", 100<<10) + `"}`
	require.NotEqual(t, 413, env.Do("POST", "/v1/customers", testenv.ServiceToken, big).Status)
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM webhook_inbox`))
}
