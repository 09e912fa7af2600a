package api_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
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

// flood posts n forged events for order from 8 goroutines and returns how many were accepted (200) and
// refused (429).
func flood(t *testing.T, env *testenv.Env, order string, first, n int) (accepted, refused int) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				st := env.Do("POST", "/webhooks/sim", "", forgedEvent(order, i, 0)).Status
				mu.Lock()
				switch st {
				case 200:
					accepted++
				case 429:
					refused++
				default:
					t.Errorf("forged event %d: status %d", i, st)
				}
				mu.Unlock()
			}
		}()
	}
	for i := first; i < first+n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return accepted, refused
}

// A flood of forged events for a real order, on top of its genuine webhook, costs no more than the
// genuine one did: the genuine event settled the charge with one lookup, every forged event of the order
// within the window waits for one shared lookup at its end, events for orders we do not have cost no
// lookup at all, the sender's bucket bounds what is stored, and each stored row has one job.
func TestForgedWebhookFloodCostsAtMostOneLookupPerWindow(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{App: simWebhooks.App, Env: map[string]string{
		"BILLING_WEBHOOK_LOOKUP_WINDOW": "1h", "BILLING_WEBHOOK_RATE": "20"}})
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	env.Sim().SetFaults(lostAnswers(1, &pgsim.WebhookFaults{Copies: intp(1)}))
	subs := subscribeUnknown(t, env, plan, 1)
	// The genuine webhook settles the charge, without the clock moving.
	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status = 'succeeded'`) == 1 &&
			env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE result = 'applied'`) == 1
	}, 10*time.Second, 10*time.Millisecond)
	order := orderOf(t, env, subs[0])
	genuine := env.Sim().Lookups(order)
	require.GreaterOrEqual(t, genuine, 1)

	accepted, refused := flood(t, env, order, 1, 120)
	unknownAccepted, _ := flood(t, env, "nobodys-order-1", 1000, 40)
	require.Positive(t, refused, "the sender's bucket (20 a second) ran dry")
	require.Equal(t, 1+accepted+unknownAccepted, env.QueryInt(`SELECT count(*) FROM webhook_inbox`),
		"only accepted events are stored")

	// Every forged event of the real order waits for the window's end (its job snoozed); those of an
	// order we do not have are processed at once, with no lookup.
	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE result = 'unknown_order'`) == unknownAccepted &&
			env.QueryInt(`SELECT count(*) FROM river_job WHERE kind = 'process_webhook' AND state = 'scheduled'`) == accepted
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, accepted, env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE processed_at IS NULL AND order_id = $1`, order))
	require.Equal(t, genuine, env.Sim().Lookups(order), "no lookup within the window beyond the genuine event's")
	require.Zero(t, env.Sim().Lookups("nobodys-order-1"))
	require.Equal(t, 1+accepted+unknownAccepted, env.QueryInt(`SELECT count(*) FROM river_job WHERE kind = 'process_webhook'`),
		"one job per stored event")
	requireExactlyOnce(t, env, subs)
}

// At the window's end one lookup answers every event that waited: each event either made a lookup
// (and records what it found) or was answered by one that started after it was stored (coalesced), and
// lookups are at least a window apart.
func TestWebhooksOfOneOrderShareLookups(t *testing.T) {
	t.Parallel()
	const window = 300 * time.Millisecond
	env := testenv.New(t, testenv.Options{Env: map[string]string{"BILLING_WEBHOOK_LOOKUP_WINDOW": window.String()}})
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	_, sub := subscribed(t, env, plan, "ok")
	order := orderOf(t, env, sub.ID)
	before := env.Sim().Lookups(order)

	const n = 40
	start := time.Now()
	accepted, refused := flood(t, env, order, 1, n)
	require.Equal(t, n, accepted)
	require.Zero(t, refused)
	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE processed_at IS NULL`) == 0
	}, 20*time.Second, 20*time.Millisecond)
	elapsed := time.Since(start)

	lookups := env.Sim().Lookups(order) - before
	require.GreaterOrEqual(t, lookups, 1)
	require.LessOrEqual(t, lookups, 1+int(elapsed/window), "lookups %d in %s", lookups, elapsed)
	// The paid order had nothing new at the gateway: the events that looked it up are stale, the rest
	// were answered by those lookups.
	stale := env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE result = 'stale'`)
	require.GreaterOrEqual(t, stale, 1)
	require.LessOrEqual(t, stale, lookups)
	require.Equal(t, n-stale, env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE result = 'coalesced'`))
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status = 'succeeded'`))
	env.RequireBalanced()
}
