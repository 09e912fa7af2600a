package api_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/gateway/stripe"
)

// simWebhooks runs billingd with its embedded simulator posting payment webhooks to /webhooks/sim.
var simWebhooks = testenv.Options{App: app.Options{SimWebhooks: true}}

func intp(n int) *int { return &n }

// lostAnswers makes the next n charges commit at the gateway and lose their answer: each attempt is
// unknown until a webhook or a lookup settles it.
func lostAnswers(n int, hooks *pgsim.WebhookFaults) pgsim.Faults {
	return pgsim.Faults{
		ChargeFaults: pgsim.ChargeFaults{CommitThenTimeout: &pgsim.CommitThenTimeoutFault{Rule: pgsim.Rule{Count: n}}},
		Webhooks:     hooks,
	}
}

// subscribeUnknown subscribes n customers whose first charge's answer is lost, and returns the subscription ids.
func subscribeUnknown(t *testing.T, env *testenv.Env, plan string, n int) []string {
	t.Helper()
	var subs []string
	for range n {
		res := env.Subscribe(env.Customer("ok"), plan)
		// 202 while the outcome is unknown; 201 when a webhook settled it before the answer was written.
		require.Contains(t, []int{201, 202}, res.Status, string(res.Body))
		subs = append(subs, res.JSON(t)["id"].(string))
	}
	return subs
}

// requireExactlyOnce checks the effects of n first payments: one charge per order at the gateway, one
// payment in the ledger per attempt, one invoice.paid per invoice, and a balanced ledger.
func requireExactlyOnce(t *testing.T, env *testenv.Env, subs []string) {
	t.Helper()
	for _, id := range subs {
		require.Equal(t, "active", env.Subscription(id)["status"], id)
	}
	charges := env.ChargesAtGateway()
	require.Len(t, charges, len(subs))
	for order, n := range charges {
		require.Equal(t, 1, n, "order %s charged once", order)
	}
	require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status <> 'succeeded'`))
	require.Equal(t, len(subs), env.QueryInt(`SELECT count(*) FROM payment_attempts`))
	require.Equal(t, len(subs), env.QueryInt(`SELECT count(*) FROM ledger_transactions WHERE kind = 'payment'`))
	require.Equal(t, len(subs), env.QueryInt(`SELECT count(*) FROM events WHERE type = 'invoice.paid'`))
	require.Equal(t, len(subs), env.QueryInt(`SELECT count(DISTINCT invoice_id) FROM events WHERE type = 'invoice.paid'`))
	env.RequireBalanced()
}

// Webhooks delivered once, three times (late), or three times crossing each other settle unknown attempts
// without the clock moving; none at all leaves them to the reconciler's lookups. Either way every effect
// happens exactly once.
func TestInboundWebhooksSettleUnknownAttemptsExactlyOnce(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		hooks *pgsim.WebhookFaults
	}{
		{"no webhooks: polling settles", &pgsim.WebhookFaults{Copies: intp(0)}},
		{"delivered once", &pgsim.WebhookFaults{Copies: intp(1)}},
		{"delivered three times, delayed", &pgsim.WebhookFaults{Copies: intp(3), DelayMs: 30}},
		{"delivered three times, reordered", &pgsim.WebhookFaults{Copies: intp(3), DelayMs: 10, Reorder: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			const n = 3
			env := testenv.New(t, simWebhooks)
			plan := env.CreatePlan("9900", "KRW", "month", 1)
			env.Sim().SetFaults(lostAnswers(n, c.hooks))
			subs := subscribeUnknown(t, env, plan, n)
			require.Len(t, env.ChargesAtGateway(), n, "the gateway took every charge")

			if *c.hooks.Copies == 0 {
				time.Sleep(50 * time.Millisecond) // what a webhook would have needed to arrive
				require.Equal(t, n, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status = 'unknown'`), "nothing but a lookup settles them")
				env.Advance("1m") // the reconciler's first lookup
				require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM webhook_inbox`))
			} else {
				// No clock movement: only the webhooks can have settled them.
				require.Eventually(t, func() bool {
					return env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status = 'succeeded'`) == n &&
						env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE processed_at IS NULL`) == 0
				}, 10*time.Second, 10*time.Millisecond)
				// Copies of one event are one event: one inbox row per order.
				require.Eventually(t, func() bool {
					delivered := 0
					for _, d := range env.Sim().Webhooks() {
						if d.Delivered {
							delivered++
						}
					}
					return delivered == n**c.hooks.Copies
				}, 5*time.Second, 10*time.Millisecond)
				require.Equal(t, n, env.QueryInt(`SELECT count(*) FROM webhook_inbox`))
				require.Equal(t, n, env.QueryInt(`SELECT count(DISTINCT order_id) FROM webhook_inbox`))
				require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE result NOT IN ('applied', 'stale')`))
				require.GreaterOrEqual(t, env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE result = 'applied'`), 1,
					"at least one attempt was settled by its webhook")
			}
			requireExactlyOnce(t, env, subs)
		})
	}
}

// An event that arrives after the attempt settled, or claims an older state, changes nothing: states
// only move on what the gateway answers now, and only forward. A refund made at the gateway does not flip
// the paid invoice back either: it is booked as a refund (a credit note, the attempt reversed).
func TestLateAndBackwardWebhooksAreStaleAndARefundIsBooked(t *testing.T) {
	t.Parallel()
	// Three events for one order in quick succession: each after the first waits for the end of the
	// lookup window (made short here) and then looks the order up again.
	env := testenv.New(t, testenv.Options{App: simWebhooks.App, Env: map[string]string{"BILLING_WEBHOOK_LOOKUP_WINDOW": "100ms"}})
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	_, sub := subscribed(t, env, plan, "ok")
	order := orderOf(t, env, sub.ID)
	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE processed_at IS NOT NULL`) == 1
	}, 5*time.Second, 10*time.Millisecond)

	// A forged "still in progress" for the paid order, as if an earlier event arrived last.
	payload, err := env.Sim().WebhookPayload(order)
	require.NoError(t, err)
	older := strings.Replace(string(payload), `"status":"DONE"`, `"status":"IN_PROGRESS"`, 1)
	older = regexp.MustCompile(`"createdAt":"[^"]+"`).ReplaceAllString(older, `"createdAt":"2020-01-01T00:00:00.000000"`)
	require.NotEqual(t, string(payload), older)
	res := env.Do("POST", "/webhooks/sim", "", older)
	require.Equal(t, 200, res.Status, string(res.Body))

	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE processed_at IS NOT NULL`) == 2
	}, 5*time.Second, 10*time.Millisecond)
	// The first (DONE) may have settled the attempt or found it settled; the forged one came after.
	require.GreaterOrEqual(t, env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE result = 'stale'`), 1)
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status = 'succeeded'`))

	// A refund at the gateway's side announces CANCELED: it is re-fetched and booked as a refund (issue
	// 16.3), not a flip of the payment: the invoice stays paid, the attempt is reversed.
	c, ok := env.Sim().Charge(order)
	require.True(t, ok)
	require.NoError(t, env.App.Gateways["sim"].Cancel(context.Background(), c.PaymentKey, "refunded in the dashboard", decimal.Zero, "dash-1"))
	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE processed_at IS NOT NULL`) == 3
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE result NOT IN ('applied', 'stale')`))
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status = 'reversed'`))
	require.Equal(t, "active", readSubscription(t, env, sub.ID).Status)
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM events WHERE type = 'invoice.paid'`))
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM ledger_transactions WHERE kind = 'payment'`))
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM ledger_transactions WHERE kind = 'refund'`))
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM credit_notes WHERE origin = 'gateway'`))
	env.RequireBalanced()
}

// orderOf is the order id of a subscription's first attempt.
func orderOf(t *testing.T, env *testenv.Env, subID string) string {
	t.Helper()
	var order string
	require.NoError(t, env.App.Pool.QueryRow(context.Background(), `SELECT a.order_id FROM payment_attempts a
		JOIN invoices i ON i.id = a.invoice_id WHERE i.subscription_id = $1 ORDER BY a.created_at LIMIT 1`, subID).Scan(&order))
	return order
}

// The same event twice is one inbox row and one job; the endpoint needs no token and refuses what it
// cannot read or does not know.
func TestInboundWebhookEndpoint(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	_, sub := subscribed(t, env, plan, "ok")
	payload, err := env.Sim().WebhookPayload(orderOf(t, env, sub.ID))
	require.NoError(t, err)

	first := env.Do("POST", "/webhooks/sim", "", payload)
	require.Equal(t, 200, first.Status, string(first.Body))
	require.Equal(t, false, first.JSON(t)["duplicate"])
	again := env.Do("POST", "/webhooks/sim", "", payload)
	require.Equal(t, 200, again.Status, string(again.Body))
	require.Equal(t, true, again.JSON(t)["duplicate"])
	require.Equal(t, first.JSON(t)["event_id"], again.JSON(t)["event_id"])
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM webhook_inbox`))
	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE result = 'stale'`) == 1
	}, 5*time.Second, 10*time.Millisecond, "the attempt had already succeeded")

	// A charge nobody here asked for is acknowledged and left to reconciliation.
	_, err = env.Sim().Plant("planted-0001", pgsim.Plant{Amount: decimal.NewFromInt(5000)})
	require.NoError(t, err)
	planted, err := env.Sim().WebhookPayload("planted-0001")
	require.NoError(t, err)
	require.Equal(t, 200, env.Do("POST", "/webhooks/sim", "", planted).Status)
	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE result = 'unknown_order' AND order_id = 'planted-0001'`) == 1
	}, 5*time.Second, 10*time.Millisecond)

	for _, c := range []struct {
		path, body string
		status     int
		code       string
	}{
		{"/webhooks/paypal", string(payload), 404, "gateway_not_found"},
		{"/webhooks/toss", string(payload), 404, "gateway_not_found"}, // not enabled here
		{"/webhooks/sim", `{"eventType":`, 400, "malformed_webhook"},
		{"/webhooks/sim", `{"createdAt":"2026-01-01T00:00:00.000000"}`, 400, "malformed_webhook"},
		{"/webhooks/sim", `{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2026-01-01T00:00:00.000000","data":{}}`, 400, "malformed_webhook"},
		{"/webhooks/sim", `{"eventType":5,"data":[]}`, 400, "malformed_webhook"},
		{"/webhooks/sim", `{"eventType":"x","pad":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "body_too_large"},
	} {
		res := env.Do("POST", c.path, "", c.body)
		require.Equal(t, c.status, res.Status, "%s: %s", c.path, res.Body)
		require.Equal(t, c.code, res.JSON(t)["code"], c.path)
		// A refusal speaks about the gateway's event format, never about our Go types or the JSON decoder.
		require.NotRegexp(t, `Go (value|struct)|webhookBody|json: |\.[a-z]+[A-Z][a-zA-Z]*\b`, res.JSON(t)["detail"], c.body)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	}
	require.Equal(t, 2, env.QueryInt(`SELECT count(*) FROM webhook_inbox`), "refused bodies store nothing")
	require.Equal(t, 405, env.Do("GET", "/webhooks/sim", "", nil).Status)
}

// Stripe signs its webhooks: a body whose signature does not verify is a 400 and is not stored; a signed
// one is stored (and, with no attempt of ours for its order, recorded as unknown_order).
func TestStripeWebhookSignature(t *testing.T) {
	t.Parallel()
	const secret = "whsec_test_0123456789"
	env := testenv.New(t, testenv.Options{Env: map[string]string{
		"BILLING_GATEWAYS": "sim,stripe", "STRIPE_SECRET_KEY": "sk_test_0123456789", "STRIPE_WEBHOOK_SECRET": secret,
		"STRIPE_API_URL": "http://127.0.0.1:9", // never called: signatures are checked locally
	}})
	body := fmt.Sprintf(`{"id":"evt_test_1","type":"payment_intent.succeeded","created":%d,"data":{"object":{"status":"succeeded","metadata":{"order_id":"inv_nope-1"}}}}`, time.Now().Unix())
	post := func(sig string) testenv.Response {
		return env.Do("POST", "/webhooks/stripe", "", body, "Stripe-Signature: "+sig)
	}

	now := time.Now()
	for name, sig := range map[string]string{
		"wrong secret": stripe.SignatureHeader("whsec_other", now, []byte(body)),
		"stale":        stripe.SignatureHeader(secret, now.Add(-10*time.Minute), []byte(body)),
		"missing":      "",
		"garbled":      "t=abc,v1=zz",
	} {
		res := post(sig)
		require.Equal(t, http.StatusBadRequest, res.Status, "%s: %s", name, res.Body)
		require.Equal(t, "invalid_signature", res.JSON(t)["code"], name)
	}
	require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM webhook_inbox`))

	// Stripe signs with the old and the new secret while one is rolled: any v1 may match.
	sig := stripe.SignatureHeader(secret, now, []byte(body))
	rolled := sig + ",v1=" + strings.Repeat("ab", 32)
	res := post(rolled)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "evt_test_1", res.JSON(t)["event_id"])
	require.Equal(t, true, post(sig).JSON(t)["duplicate"])
	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE gateway = 'stripe' AND event_kind = 'payment_status_changed'
			AND result = 'unknown_order'`) == 1
	}, 5*time.Second, 10*time.Millisecond)
}

// The "stuck cart": a customer who closed the app mid-payment sees the true state when they come back,
// whether the app reads the subscription or the customer. No clock moves and no webhook arrives.
func TestReadingASubscriptionOrCustomerSettlesAStuckPayment(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	env.Sim().SetFaults(lostAnswers(2, nil))
	viaSub := env.Customer("ok")
	res := env.Subscribe(viaSub, plan)
	require.Equal(t, 202, res.Status, string(res.Body))
	subA := res.JSON(t)["id"].(string)
	viaCustomer := env.Customer("ok")
	res = env.Subscribe(viaCustomer, plan)
	require.Equal(t, 202, res.Status, string(res.Body))
	subB := res.JSON(t)["id"].(string)
	require.Equal(t, 2, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status = 'unknown'`))

	require.Equal(t, "active", env.Subscription(subA)["status"])
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status = 'unknown'`))

	res = env.Do("GET", "/v1/customers/"+viaCustomer, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "none", res.JSON(t)["delinquency"].(map[string]any)["state"])
	require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status = 'unknown'`))
	require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM webhook_inbox`))
	requireExactlyOnce(t, env, []string{subA, subB})
}

// billing_webhooks_silent{gateway} is 1 when charges were made there and no webhook came for an hour.
func TestWebhookSilenceMetric(t *testing.T) {
	t.Parallel()
	silent := func(env *testenv.Env) string {
		res := env.Do("GET", "/metrics", "", nil)
		require.Equal(t, 200, res.Status)
		m := regexp.MustCompile(`(?m)^billing_webhooks_silent\{gateway="sim"\} (\d)$`).FindStringSubmatch(string(res.Body))
		require.NotNil(t, m, "metric exposed")
		return m[1]
	}
	t.Run("no webhooks", func(t *testing.T) {
		t.Parallel()
		env := testenv.New(t)
		plan := env.CreatePlan("9900", "KRW", "month", 1)
		require.Equal(t, "0", silent(env), "no charges yet: nothing to expect")
		subscribed(t, env, plan, "ok")
		require.Equal(t, "0", silent(env), "a webhook may still be on its way")
		env.Advance("10m")
		require.Equal(t, "1", silent(env))
		env.Advance("2h")
		require.Equal(t, "0", silent(env), "no charges in the last hour: silence is expected")
	})
	t.Run("webhooks arriving", func(t *testing.T) {
		t.Parallel()
		env := testenv.New(t, simWebhooks)
		plan := env.CreatePlan("9900", "KRW", "month", 1)
		subscribed(t, env, plan, "ok")
		require.Eventually(t, func() bool { return env.QueryInt(`SELECT count(*) FROM webhook_inbox`) == 1 }, 5*time.Second, 10*time.Millisecond)
		env.Advance("10m")
		require.Equal(t, "0", silent(env))
	})
}

// Receiving is an insert and a 200, never a wait for the job workers: with every connection of the
// service's pool held (billing day: 300 workers on 40 connections), a gateway's POST is still answered and
// stored at once, and its processing follows when the workers have room. (Its latency under load is a
// benchmark figure: `go run ./cmd/bench -only webhooks`.)
func TestWebhookReceiptDoesNotWaitForTheWorkersPool(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	_, sub := subscribed(t, env, plan, "ok")
	payload, err := env.Sim().WebhookPayload(orderOf(t, env, sub.ID))
	require.NoError(t, err)

	ctx := context.Background()
	pool := env.App.Pool
	var held []*pgxpool.Conn
	for range pool.Config().MaxConns {
		c, err := pool.Acquire(ctx)
		require.NoError(t, err)
		held = append(held, c)
	}
	release := func() {
		for _, c := range held {
			c.Release()
		}
		held = nil
	}
	defer release()

	reqCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, env.URL+"/webhooks/sim", strings.NewReader(string(payload)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "answered while the workers' pool is exhausted")
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	// Read through a connection of our own: the service's pool is still held.
	own, err := pgx.Connect(ctx, env.DBURL)
	require.NoError(t, err)
	defer own.Close(ctx)
	var stored, dispatched int
	require.NoError(t, own.QueryRow(ctx, `SELECT count(*), count(dispatched_at) FROM webhook_inbox`).Scan(&stored, &dispatched))
	require.Equal(t, 1, stored, "stored before the answer")

	release()
	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE dispatched_at IS NOT NULL AND result = 'stale'`) == 1
	}, 10*time.Second, 10*time.Millisecond, "dispatched and processed once the pool frees")
}
