package billing_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// seenRequest is one request the gateway received.
type seenRequest struct {
	Kind    string // "charge" or "lookup"
	OrderID string
}

// gatewayLog records every charge and order lookup the simulator receives, whatever it answers: what the
// gateway saw, not what we recorded.
type gatewayLog struct {
	next http.Handler
	mu   sync.Mutex
	seen []seenRequest
}

func (g *gatewayLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/billing/") && r.URL.Path != "/v1/billing/authorizations/issue":
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			OrderID string `json:"orderId"`
		}
		_ = json.Unmarshal(body, &req)
		g.add(seenRequest{Kind: "charge", OrderID: req.OrderID})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/payments/orders/"):
		g.add(seenRequest{Kind: "lookup", OrderID: strings.TrimPrefix(r.URL.Path, "/v1/payments/orders/")})
	}
	g.next.ServeHTTP(w, r)
}

func (g *gatewayLog) add(s seenRequest) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seen = append(g.seen, s)
}

// since returns the requests of kind received after the first n requests.
func (g *gatewayLog) since(n int, kind string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, s := range g.seen[n:] {
		if s.Kind == kind {
			out = append(out, s.OrderID)
		}
	}
	return out
}

func (g *gatewayLog) mark() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}

// envWithGatewayLog starts a billingd whose simulator records every request it receives.
func envWithGatewayLog(t *testing.T) (*testenv.Env, *pgsim.Server, *gatewayLog) {
	t.Helper()
	var env atomic.Pointer[testenv.Env]
	start := testenv.ClockStart()
	sim := pgsim.New(pgsim.Options{Seed: 1, SecretKey: "test_sk_sim", Clock: func() time.Time {
		if e := env.Load(); e != nil {
			return e.App.Clock.Now()
		}
		return start
	}})
	t.Cleanup(sim.Close)
	log := &gatewayLog{next: sim}
	env.Store(testenv.New(t, testenv.Options{SimURL: serve(t, log)}))
	return env.Load(), sim, log
}

// A past-due subscription whose dunning support paused is not charged at its renewal, nor by a new card,
// nor by support's retry: the renewal is invoiced and waits. Resuming collects what waited, at once.
func TestDunningPauseHoldsEveryChargeUntilResumed(t *testing.T) {
	t.Parallel()
	env, sim, gw := envWithGatewayLog(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer(pgsim.BehaviorOK)
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub := res.JSON(t)["id"].(string)
	require.NoError(t, sim.SetCustomerBehavior("ck-"+cus, pgsim.BehaviorInsufficient))
	env.AdvanceToRenewal(sub, time.Minute)
	require.Equal(t, "past_due", env.Subscription(sub)["status"])
	first := subInvoices(t, env, sub)[1]["id"].(string)

	res = support(t, env, "/subscriptions/"+sub+"/pause-dunning", map[string]any{"reason": "customer disputes the charge"}, "req-pause")
	require.Equal(t, 200, res.Status, string(res.Body))
	mark := gw.mark()

	// The next period comes: its invoice is created and waits, while the first invoice's retries wait too.
	env.AdvanceToRenewal(sub, time.Hour)
	invs := subInvoices(t, env, sub)
	require.Len(t, invs, 3, "the renewal is invoiced while dunning is paused")
	held := invs[2]["id"].(string)
	require.Equal(t, "open", invs[2]["status"])
	require.Equal(t, "renewal", invs[2]["kind"])
	require.Empty(t, invs[2]["attempts"], "and not charged")

	// A new card does not charge either (it is charged when dunning resumes), nor does support's retry.
	env.AddKey(cus, pgsim.BehaviorOK)
	env.Advance("1h")
	retry := support(t, env, "/invoices/"+held+"/retry", map[string]any{"reason": "try the new card"}, "req-retry")
	require.Equal(t, 409, retry.Status, string(retry.Body))
	require.Equal(t, "dunning_paused", retry.JSON(t)["code"])
	require.Contains(t, retry.JSON(t)["detail"], "resume-dunning")
	require.Empty(t, gw.since(mark, "charge"), "no charge of any kind reached the gateway while dunning was paused")
	require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1`, held))

	res = support(t, env, "/subscriptions/"+sub+"/resume-dunning", map[string]any{"reason": "dispute settled"}, "req-resume")
	require.Equal(t, 200, res.Status, string(res.Body))
	env.Advance("1m") // the workers collect what was due at the resume
	for _, id := range []string{first, held} {
		inv := env.Do("GET", "/v1/invoices/"+id, testenv.ServiceToken, nil).JSON(t)
		require.Equal(t, "paid", inv["status"], "%s is collected when dunning resumes", id)
	}
	require.ElementsMatch(t, []string{first + "-2", held + "-1"}, gw.since(mark, "charge"), "one charge each, after the resume")
	require.Equal(t, "active", env.Subscription(sub)["status"])
	env.RequireBalanced()
}

// Without a new card, the resume charges the renewal that waited at once; the first invoice's retry keeps
// its place on the dunning clock (as far after the resume as it was after the pause).
func TestDunningResumeChargesTheWaitingRenewalAtOnce(t *testing.T) {
	t.Parallel()
	env, sim, gw := envWithGatewayLog(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer(pgsim.BehaviorOK)
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub := res.JSON(t)["id"].(string)
	require.NoError(t, sim.SetCustomerBehavior("ck-"+cus, pgsim.BehaviorInsufficient))
	failedAt := env.AdvanceToRenewal(sub, 0)
	first := subInvoices(t, env, sub)[1]["id"].(string)
	retryAt, err := time.Parse(time.RFC3339Nano, env.Subscription(sub)["dunning"].(map[string]any)["next_attempt_at"].(string))
	require.NoError(t, err)

	require.Equal(t, 200, support(t, env, "/subscriptions/"+sub+"/pause-dunning", map[string]any{"reason": "hardship"}, "req").Status)
	mark := gw.mark()
	renewal := env.RenewalAt(sub)
	env.AdvanceTo(renewal.Add(2 * day))
	require.Empty(t, gw.since(mark, "charge"))
	held := subInvoices(t, env, sub)[2]["id"].(string)

	require.NoError(t, sim.SetCustomerBehavior("ck-"+cus, pgsim.BehaviorOK))
	res = support(t, env, "/subscriptions/"+sub+"/resume-dunning", map[string]any{"reason": "hardship over"}, "req")
	require.Equal(t, 200, res.Status, string(res.Body))
	resumedAt := env.Advance("1m")
	require.Equal(t, []string{held + "-1"}, gw.since(mark, "charge"), "the waiting renewal is charged at the resume, and only it")
	require.Equal(t, "paid", env.Do("GET", "/v1/invoices/"+held, testenv.ServiceToken, nil).JSON(t)["status"])
	require.Equal(t, "open", env.Do("GET", "/v1/invoices/"+first, testenv.ServiceToken, nil).JSON(t)["status"])

	// The first invoice's retry was retryAt-failedAt after the failure; it comes that long after the resume.
	env.AdvanceTo(resumedAt.Add(retryAt.Sub(failedAt)).Add(time.Hour))
	require.Equal(t, []string{held + "-1", first + "-2"}, gw.since(mark, "charge"))
	require.Equal(t, "active", env.Subscription(sub)["status"])
	env.RequireBalanced()
}

// An attempt whose outcome is unknown keeps being looked up while dunning is paused: money that moved is
// found and booked. But when the gateway has never seen the order, resending it would be the first time the
// charge reaches the gateway, a new charge in all but name: the resend waits for the resume, and then goes
// out under the same order id.
func TestDunningPauseKeepsLookingUpButHoldsTheResend(t *testing.T) {
	t.Parallel()
	env, sim, gw := envWithGatewayLog(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer(pgsim.BehaviorOK)
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub := res.JSON(t)["id"].(string)
	require.NoError(t, sim.SetCustomerBehavior("ck-"+cus, pgsim.BehaviorInsufficient))
	env.AdvanceToRenewal(sub, 0)
	inv := subInvoices(t, env, sub)[1]["id"].(string)
	retryAt, err := time.Parse(time.RFC3339Nano, env.Subscription(sub)["dunning"].(map[string]any)["next_attempt_at"].(string))
	require.NoError(t, err)

	// The retry's request fails with a 5xx before the gateway commits it: unknown to us, unseen by the gateway.
	require.NoError(t, sim.SetCustomerBehavior("ck-"+cus, pgsim.BehaviorOK))
	sim.SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{Error5xxBeforeCommit: &pgsim.Rule{Count: 1}}})
	env.AdvanceTo(retryAt)
	order := inv + "-2"
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE order_id = $1 AND status IN ('pending', 'unknown')`, order))
	_, committed := sim.Charge(order)
	require.False(t, committed)

	require.Equal(t, 200, support(t, env, "/subscriptions/"+sub+"/pause-dunning", map[string]any{"reason": "disputed"}, "req").Status)
	mark := gw.mark()
	env.Advance("72h")
	require.NotEmpty(t, gw.since(mark, "lookup"), "lookups go on while paused")
	require.Empty(t, gw.since(mark, "charge"), "the resend waits")
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE order_id = $1 AND status = 'unknown'`, order))
	// Reading the subscription looks the attempt up at once, and does not resend either.
	env.Subscription(sub)
	require.Empty(t, gw.since(mark, "charge"))

	require.Equal(t, 200, support(t, env, "/subscriptions/"+sub+"/resume-dunning", map[string]any{"reason": "settled"}, "req").Status)
	env.Advance("1m")
	require.Equal(t, []string{order}, gw.since(mark, "charge"), "resent once, under the same order id, after the resume")
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE order_id = $1 AND status = 'succeeded'`, order))
	require.Equal(t, 2, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1`, inv), "no new attempt")
	require.Equal(t, "paid", env.Do("GET", "/v1/invoices/"+inv, testenv.ServiceToken, nil).JSON(t)["status"])
	env.RequireBalanced()
}

// A lookup during the pause that finds the payment went through books it: the pause holds charges, not
// the truth about money that already moved.
func TestDunningPauseStillBooksAPaymentTheLookupFinds(t *testing.T) {
	t.Parallel()
	env, sim, gw := envWithGatewayLog(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer(pgsim.BehaviorOK)
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub := res.JSON(t)["id"].(string)
	require.NoError(t, sim.SetCustomerBehavior("ck-"+cus, pgsim.BehaviorInsufficient))
	env.AdvanceToRenewal(sub, 0)
	inv := subInvoices(t, env, sub)[1]["id"].(string)
	retryAt, err := time.Parse(time.RFC3339Nano, env.Subscription(sub)["dunning"].(map[string]any)["next_attempt_at"].(string))
	require.NoError(t, err)

	// The retry is committed at the gateway but its answer is lost.
	require.NoError(t, sim.SetCustomerBehavior("ck-"+cus, pgsim.BehaviorOK))
	sim.SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{Error5xxAfterCommit: &pgsim.Rule{Count: 1}}})
	env.AdvanceTo(retryAt)
	require.Equal(t, 200, support(t, env, "/subscriptions/"+sub+"/pause-dunning", map[string]any{"reason": "disputed"}, "req").Status)
	mark := gw.mark()
	env.Advance("2h")
	require.Empty(t, gw.since(mark, "charge"))
	require.NotEmpty(t, gw.since(mark, "lookup"))
	require.Equal(t, "paid", env.Do("GET", "/v1/invoices/"+inv, testenv.ServiceToken, nil).JSON(t)["status"])
	require.Equal(t, "active", env.Subscription(sub)["status"], "paid in full: the subscription recovers and the pause ends with it")
	env.RequireBalanced()
}
