package api_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/notify"
)

// fastWebhooks makes fan-out and retries take milliseconds instead of seconds.
var fastWebhooks = testenv.Options{App: app.Options{Notify: notify.Tuning{
	Interval: 50 * time.Millisecond, BackoffBase: 50 * time.Millisecond, BackoffMax: time.Second, GapGrace: 50 * time.Millisecond,
}}}

// hookReceiver is a merchant's webhook server. Each path is one endpoint; it answers with the next status of
// its path's script (the last repeats; none means 200) and verifies every signature with the secret the
// endpoint was created with.
type hookReceiver struct {
	*httptest.Server
	t       *testing.T
	mu      sync.Mutex
	secrets map[string]string
	scripts map[string][]int
	got     map[string][]hook
}

type hook struct {
	event    notify.Event
	eventID  string // the Billing-Event-Id header
	attempt  string
	verified error
	status   int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{t: t, secrets: map[string]string{}, scripts: map[string][]int{}, got: map[string][]hook{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		var ev notify.Event
		err := json.Unmarshal(body, &ev)
		if err == nil && r.Header.Get("Content-Type") != "application/json" {
			err = errContentType
		}
		if err == nil {
			err = notify.Verify(h.secrets[r.URL.Path], r.Header.Get("Billing-Signature"), body, time.Now(), time.Minute)
		}
		status := 200
		if s := h.scripts[r.URL.Path]; len(s) > 0 {
			status = s[min(len(h.got[r.URL.Path]), len(s)-1)]
		}
		h.got[r.URL.Path] = append(h.got[r.URL.Path], hook{event: ev, eventID: r.Header.Get("Billing-Event-Id"),
			attempt: r.Header.Get("Billing-Delivery-Attempt"), verified: err, status: status})
		w.WriteHeader(status)
	}))
	t.Cleanup(h.Close)
	return h
}

var errContentType = errors.New("content type is not application/json")

// register creates an endpoint at path for events and remembers its secret.
func (h *hookReceiver) register(env *testenv.Env, path string, events ...string) map[string]any {
	h.t.Helper()
	res := env.Do("POST", "/v1/webhook-endpoints", testenv.AdminToken, map[string]any{"url": h.URL + path, "events": events})
	require.Equal(h.t, 201, res.Status, string(res.Body))
	ep := res.JSON(h.t)
	h.mu.Lock()
	h.secrets[path] = ep["secret"].(string)
	h.mu.Unlock()
	return ep
}

func (h *hookReceiver) script(path string, statuses ...int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.scripts[path] = statuses
}

func (h *hookReceiver) hooks(path string) []hook {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got[path])
}

// types lists the event types path received for a subscription (all when sub is ""), in outbox order
// (deliveries are concurrent, so arrival order is not event order).
func (h *hookReceiver) types(env *testenv.Env, path, sub string) []string {
	hs := h.hooks(path)
	seq := map[string]int{}
	for _, x := range hs {
		seq[x.event.ID] = env.QueryInt(`SELECT seq FROM events WHERE id = $1`, x.event.ID)
	}
	slices.SortStableFunc(hs, func(a, b hook) int { return seq[a.event.ID] - seq[b.event.ID] })
	var out []string
	for _, x := range hs {
		if sub == "" || (x.event.SubscriptionID != nil && *x.event.SubscriptionID == sub) {
			out = append(out, x.event.Type)
		}
	}
	return out
}

// caughtUp waits until the fan-out has passed every event written so far and no delivery is pending.
func caughtUp(t *testing.T, env *testenv.Env) {
	t.Helper()
	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM events WHERE seq > (SELECT seq FROM notify_cursor)`) == 0 &&
			env.QueryInt(`SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'`) == 0
	}, 15*time.Second, 10*time.Millisecond)
}

func TestWebhookEndpointsAdminAPI(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, fastWebhooks)
	const base = "/v1/webhook-endpoints"

	for _, c := range []struct {
		body   any
		status int
		field  string
	}{
		{map[string]any{"url": "ftp://example.com/hook", "events": []string{"*"}}, 422, "url"},
		{map[string]any{"url": "http://127.0.0.1:1/hook", "events": []string{"invoice.paid", "invoice.nope"}}, 422, "events[1]"},
		{map[string]any{"url": "http://127.0.0.1:1/hook", "events": []string{}}, 422, "events"},
		{map[string]any{"url": "http://127.0.0.1:1/hook"}, 422, "events"},
		{map[string]any{"url": "http://127.0.0.1:1/hook", "events": []string{"*"}, "secret": "mine"}, 400, "secret"},
		{map[string]any{"url": "http://127.0.0.1:1/hook", "events": "*"}, 400, "events"},
	} {
		res := env.Do("POST", base, testenv.AdminToken, c.body)
		require.Equal(t, c.status, res.Status, string(res.Body))
		require.Equal(t, c.field, res.JSON(t)["errors"].([]any)[0].(map[string]any)["field"], string(res.Body))
	}
	for _, tok := range []string{testenv.ServiceToken, testenv.SupportToken} {
		require.Equal(t, 403, env.Do("POST", base, tok, map[string]any{"url": "http://127.0.0.1:1/x", "events": []string{"*"}}).Status)
		require.Equal(t, 403, env.Do("GET", base, tok, nil).Status)
	}
	require.Equal(t, 401, env.Do("GET", base, "", nil).Status)

	res := env.Do("POST", base, testenv.AdminToken, map[string]any{"url": "http://127.0.0.1:1/hook",
		"events": []string{"invoice.paid", "subscription.past_due", "invoice.paid"}})
	require.Equal(t, 201, res.Status, string(res.Body))
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	created := res.JSON(t)
	secret := created["secret"].(string)
	id := created["id"].(string)
	require.Regexp(t, `^whsec_[0-9a-f]{48}$`, secret)
	require.Regexp(t, `^we_[0-9a-z]{20}$`, id)
	require.Equal(t, "http://127.0.0.1:1/hook", created["url"])
	require.Equal(t, []any{"invoice.paid", "subscription.past_due"}, created["events"], "duplicates dropped")
	require.Equal(t, "enabled", created["status"])
	require.NotEmpty(t, created["created_at"])

	all := env.Do("POST", base, testenv.AdminToken, map[string]any{"url": "https://hooks.example.com/b", "events": []string{"invoice.paid", "*"}})
	require.Equal(t, 201, all.Status)
	require.Equal(t, []any{"*"}, all.JSON(t)["events"])

	var bodies []string
	list := env.Do("GET", base, testenv.AdminToken, nil)
	require.Equal(t, 200, list.Status)
	require.Len(t, list.JSON(t)["data"], 2)
	require.Nil(t, list.JSON(t)["next_cursor"])
	bodies = append(bodies, string(list.Body))
	one := env.Do("GET", base+"/"+id, testenv.AdminToken, nil)
	require.Equal(t, 200, one.Status)
	require.Equal(t, id, one.JSON(t)["id"])
	bodies = append(bodies, string(one.Body))
	paged := env.Do("GET", base+"?limit=1", testenv.AdminToken, nil)
	require.Equal(t, 200, paged.Status)
	require.Len(t, paged.JSON(t)["data"], 1)
	next := env.Do("GET", base+"?limit=1&cursor="+paged.JSON(t)["next_cursor"].(string), testenv.AdminToken, nil)
	require.Equal(t, 200, next.Status)
	require.NotEqual(t, paged.JSON(t)["data"], next.JSON(t)["data"])
	bodies = append(bodies, string(paged.Body), string(next.Body))
	for _, b := range bodies {
		require.NotContains(t, b, secret)
		require.NotContains(t, b, `"secret"`)
		require.NotContains(t, b, "whsec_")
	}
	testenv.AssertNoSecretInDB(t, env.App.Pool, secret)

	res = env.Do("GET", base+"/"+id+"/deliveries", testenv.AdminToken, nil)
	require.Equal(t, 200, res.Status)
	require.Equal(t, []any{}, res.JSON(t)["data"])

	del := env.Do("DELETE", base+"/"+id, testenv.AdminToken, nil)
	require.Equal(t, 200, del.Status, string(del.Body))
	require.Equal(t, "deleted", del.JSON(t)["status"])
	require.NotNil(t, del.JSON(t)["deleted_at"])
	require.NotContains(t, string(del.Body), secret)
	require.Equal(t, 200, env.Do("DELETE", base+"/"+id, testenv.AdminToken, nil).Status, "deleting again is a no-op")
	require.Equal(t, "deleted", env.Do("GET", base+"/"+id, testenv.AdminToken, nil).JSON(t)["status"], "still readable")
	require.Len(t, env.Do("GET", base, testenv.AdminToken, nil).JSON(t)["data"], 1, "not listed")

	for _, p := range []string{base + "/we_nope", base + "/we_nope/deliveries"} {
		res := env.Do("GET", p, testenv.AdminToken, nil)
		require.Equal(t, 404, res.Status)
		require.Equal(t, "webhook_endpoint_not_found", res.JSON(t)["code"])
	}
	require.Equal(t, 404, env.Do("DELETE", base+"/we_nope", testenv.AdminToken, nil).Status)
	require.Equal(t, 422, env.Do("GET", base+"/"+id+"/deliveries?cursor=bm9wZQ", testenv.AdminToken, nil).Status)
}

// Real flows emit events; each endpoint gets the ones it subscribed to, signed with its own secret.
func TestWebhooksDeliverSignedEventsFromRealFlows(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, fastWebhooks)
	rcv := newHookReceiver(t)
	all := rcv.register(env, "/all", "*")
	rcv.register(env, "/failures", "invoice.payment_failed", "payment.failed")

	plan := env.CreatePlan("9900", "KRW", "month", 1)
	okRes := env.Subscribe(env.Customer("ok"), plan)
	require.Equal(t, 201, okRes.Status, string(okRes.Body))
	okSub := okRes.JSON(t)
	declined := env.Subscribe(env.Customer("insufficient"), plan)
	require.Equal(t, 402, declined.Status, string(declined.Body))
	badSub := declined.JSON(t)["subscription_id"].(string)
	caughtUp(t, env)

	require.Equal(t, []string{"subscription.created", "invoice.created", "invoice.finalized", "payment.succeeded",
		"invoice.paid", "subscription.activated"}, rcv.types(env, "/all", okSub["id"].(string)))
	require.Subset(t, rcv.types(env, "/all", badSub), []string{"subscription.created", "payment.failed", "invoice.payment_failed"})
	require.ElementsMatch(t, []string{"payment.failed", "invoice.payment_failed"}, rcv.types(env, "/failures", ""), "only what it subscribed to")

	for _, path := range []string{"/all", "/failures"} {
		for _, h := range rcv.hooks(path) {
			require.NoError(t, h.verified, "%s %s", path, h.event.Type)
			require.Equal(t, h.event.ID, h.eventID)
			require.Equal(t, "1", h.attempt)
		}
	}
	// The body is the outbox row.
	for _, h := range rcv.hooks("/all") {
		if h.event.Type != "invoice.paid" {
			continue
		}
		var typ, cus, sub, inv string
		require.NoError(t, env.App.Pool.QueryRow(t.Context(), `SELECT type, customer_id, subscription_id, invoice_id FROM events WHERE id = $1`,
			h.event.ID).Scan(&typ, &cus, &sub, &inv))
		require.Equal(t, typ, h.event.Type)
		require.Equal(t, okSub["customer_id"], cus)
		require.Equal(t, cus, *h.event.CustomerID)
		require.Equal(t, sub, *h.event.SubscriptionID)
		require.Equal(t, inv, *h.event.InvoiceID)
		require.Equal(t, "9900", mapOf(t, h.event.Data)["amount_paid"])
		require.False(t, h.event.CreatedAt.IsZero())
	}

	res := env.Do("GET", "/v1/webhook-endpoints/"+all["id"].(string)+"/deliveries?limit=500", testenv.AdminToken, nil)
	require.Equal(t, 200, res.Status)
	rows := res.JSON(t)["data"].([]any)
	require.Len(t, rows, len(rcv.hooks("/all")))
	for _, r := range rows {
		d := r.(map[string]any)
		require.Equal(t, "delivered", d["status"])
		require.Equal(t, 1.0, d["attempts"])
		require.Equal(t, 200.0, d["last_status"])
		require.Nil(t, d["last_error"])
		require.Nil(t, d["next_attempt_at"])
		require.NotNil(t, d["delivered_at"])
		require.NotEmpty(t, d["event_type"])
		require.Equal(t, all["id"], d["endpoint_id"])
	}
	env.RequireBalanced()
}

func mapOf(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

// A receiver that fails twice gets the event a third time; the delivery row tells the story.
func TestWebhookRetriedUntilTheReceiverAnswers(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, fastWebhooks)
	rcv := newHookReceiver(t)
	rcv.script("/flaky", 500, 502, 200)
	ep := rcv.register(env, "/flaky", "invoice.paid")

	plan := env.CreatePlan("9900", "KRW", "month", 1)
	require.Equal(t, 201, env.Subscribe(env.Customer("ok"), plan).Status)
	caughtUp(t, env)

	got := rcv.hooks("/flaky")
	require.Len(t, got, 3)
	for i, h := range got {
		require.Equal(t, "invoice.paid", h.event.Type)
		require.Equal(t, got[0].event.ID, h.event.ID, "the same event each time")
		require.Equal(t, []string{"1", "2", "3"}[i], h.attempt)
		require.NoError(t, h.verified)
	}

	res := env.Do("GET", "/v1/webhook-endpoints/"+ep["id"].(string)+"/deliveries", testenv.AdminToken, nil)
	require.Equal(t, 200, res.Status)
	rows := res.JSON(t)["data"].([]any)
	require.Len(t, rows, 1)
	d := rows[0].(map[string]any)
	require.Equal(t, "delivered", d["status"])
	require.Equal(t, 3.0, d["attempts"])
	require.Equal(t, 200.0, d["last_status"])
	require.Equal(t, got[0].event.ID, d["event_id"])
	require.Equal(t, "invoice.paid", d["event_type"])

	testenv.AssertNoSecretInDB(t, env.App.Pool, ep["secret"].(string)) // River's job args included

	metrics := env.Do("GET", "/metrics", "", nil)
	require.Contains(t, string(metrics.Body), `billing_webhook_deliveries_total{outcome="delivered"} 1`)
	require.Contains(t, string(metrics.Body), `billing_webhook_deliveries_total{outcome="retrying"} 2`)
	env.RequireBalanced()
}

func TestDeletedWebhookEndpointGetsNothingMore(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, fastWebhooks)
	rcv := newHookReceiver(t)
	ep := rcv.register(env, "/gone", "*")
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	first := env.Subscribe(env.Customer("ok"), plan).JSON(t)["id"].(string)
	caughtUp(t, env)
	require.NotEmpty(t, rcv.types(env, "/gone", first))
	before := len(rcv.hooks("/gone"))

	require.Equal(t, 200, env.Do("DELETE", "/v1/webhook-endpoints/"+ep["id"].(string), testenv.AdminToken, nil).Status)
	second := env.Subscribe(env.Customer("ok"), plan).JSON(t)["id"].(string)
	env.Advance("744h") // and a renewal for both
	caughtUp(t, env)
	require.Len(t, rcv.hooks("/gone"), before)
	require.Empty(t, rcv.types(env, "/gone", second))
	require.Zero(t, env.QueryInt(`SELECT count(*) FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
		WHERE e.subscription_id = $1`, second))
	env.RequireBalanced()
}

// Every dunning step of issue 5 reaches the merchant: one subscription recovers, the other walks past
// due -> suspended -> canceled under the default policy.
func TestDunningStepsAreDeliveredAsWebhooks(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, fastWebhooks)
	rcv := newHookReceiver(t)
	rcv.register(env, "/dunning", "invoice.payment_failed", "subscription.past_due", "subscription.suspended",
		"subscription.canceled", "subscription.recovered")

	plan := env.CreatePlan("9900", "KRW", "month", 1)
	recovering, lapsing := env.Customer("ok"), env.Customer("ok")
	recSub := env.Subscribe(recovering, plan).JSON(t)["id"].(string)
	lapSub := env.Subscribe(lapsing, plan).JSON(t)["id"].(string)
	for _, c := range []string{recovering, lapsing} {
		require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+c, "insufficient"))
	}

	// Just past the renewals, which are declined; the first retry is a day later.
	var clk struct {
		Now time.Time `json:"now"`
	}
	env.Do("GET", "/v1/test-clock", testenv.AdminToken, nil).Decode(t, &clk)
	periodEnd, err := time.Parse(time.RFC3339Nano, env.Subscription(recSub)["current_period_end"].(string))
	require.NoError(t, err)
	env.Advance((periodEnd.Sub(clk.Now) + time.Hour).Round(time.Second).String())
	require.Equal(t, "past_due", env.Subscription(recSub)["status"])
	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+recovering, "ok"))
	env.Advance("48h") // the first retry (a day, with jitter) succeeds
	require.Equal(t, "active", env.Subscription(recSub)["status"])
	caughtUp(t, env)
	require.Equal(t, []string{"invoice.payment_failed", "subscription.past_due", "subscription.recovered"}, rcv.types(env, "/dunning", recSub))

	env.Advance("480h") // grace (7 days) ends; the last retry (moved to payday, around day 17) fails: final action
	require.Equal(t, "canceled", env.Subscription(lapSub)["status"])
	caughtUp(t, env)
	steps := slices.Compact(rcv.types(env, "/dunning", lapSub)) // retries repeat invoice.payment_failed
	require.Equal(t, []string{"invoice.payment_failed", "subscription.past_due"}, steps[:2], "%v", steps)
	require.Contains(t, steps, "subscription.suspended", "%v", steps)
	require.Equal(t, "subscription.canceled", steps[len(steps)-1], "%v", steps)
	require.Less(t, slices.Index(steps, "subscription.suspended"), len(steps)-1, "%v", steps)
	for _, h := range rcv.hooks("/dunning") {
		require.NoError(t, h.verified)
		require.True(t, strings.HasPrefix(h.event.Type, "invoice.") || strings.HasPrefix(h.event.Type, "subscription."))
	}
	env.RequireBalanced()
}

// A delivery that ran out of attempts while the merchant's server was down is re-sent by hand once it is
// fixed: one more signed attempt of the same event, through the job queue.
func TestFailedWebhookDeliveryIsResentByHand(t *testing.T) {
	t.Parallel()
	opts := fastWebhooks
	opts.App.Notify.MaxAttempts = 2
	env := testenv.New(t, opts)
	rcv := newHookReceiver(t)
	rcv.script("/down", 503, 503, 200)
	ep := rcv.register(env, "/down", "invoice.paid")
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	require.Equal(t, 201, env.Subscribe(env.Customer("ok"), plan).Status)
	caughtUp(t, env)
	base := "/v1/webhook-endpoints/" + ep["id"].(string) + "/deliveries"
	res := env.Do("GET", base, testenv.AdminToken, nil)
	d := res.JSON(t)["data"].([]any)[0].(map[string]any)
	require.Equal(t, "failed", d["status"])
	require.Len(t, rcv.hooks("/down"), 2)

	require.Equal(t, 403, env.Do("POST", base+"/"+d["id"].(string)+"/resend", testenv.SupportToken, nil).Status)
	res = env.Do("POST", base+"/"+d["id"].(string)+"/resend", testenv.AdminToken, nil)
	require.Equal(t, 202, res.Status, string(res.Body))
	require.Equal(t, "pending", res.JSON(t)["status"])
	caughtUp(t, env)
	got := rcv.hooks("/down")
	require.Len(t, got, 3)
	require.Equal(t, got[0].event.ID, got[2].event.ID, "the same event")
	require.Equal(t, "3", got[2].attempt)
	require.NoError(t, got[2].verified)
	res = env.Do("GET", base, testenv.AdminToken, nil)
	require.Equal(t, "delivered", res.JSON(t)["data"].([]any)[0].(map[string]any)["status"])

	res = env.Do("POST", base+"/"+d["id"].(string)+"/resend", testenv.AdminToken, nil)
	require.Equal(t, 409, res.Status, string(res.Body))
	require.Equal(t, "delivered", res.JSON(t)["state"])
	require.Equal(t, 404, env.Do("POST", base+"/12345678/resend", testenv.AdminToken, nil).Status)
	require.Equal(t, 404, env.Do("POST", base+"/nonsense/resend", testenv.AdminToken, nil).Status)
}
