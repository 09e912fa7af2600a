package billing_test

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// invoicesOf returns the subscription's invoices (kind, status, period start), oldest first.
func invoicesOf(t *testing.T, env *testenv.Env, subID string) []map[string]any {
	t.Helper()
	res := env.Do("GET", "/v1/invoices?limit=500&subscription_id="+subID, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status)
	var out []map[string]any
	for _, d := range res.JSON(t)["data"].([]any) {
		out = append(out, d.(map[string]any))
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["period_start"].(string) < out[j]["period_start"].(string) })
	return out
}

// requireOneChargePerInvoice checks the gateway's side: every invoice of ours was charged at most once,
// and every charge at the gateway belongs to a paid invoice of the same amount.
func requireOneChargePerInvoice(t *testing.T, env *testenv.Env) {
	t.Helper()
	perInvoice := map[string]int{}
	for _, c := range env.Sim().Charges() {
		if c.Status != "DONE" {
			continue
		}
		inv := c.OrderID[:strings.LastIndex(c.OrderID, "-")]
		perInvoice[inv]++
		require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM invoices WHERE id = $1 AND status = 'paid' AND amount_paid = $2`, inv, c.Amount),
			"charge %s belongs to a paid invoice of %s", c.OrderID, c.Amount)
	}
	for inv, n := range perInvoice {
		require.Equal(t, 1, n, "invoice %s charged %d times", inv, n)
	}
}

func TestAMonthRenewsOnceAndAYearTwelveTimesInOrder(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	monthly := env.CreatePlan("9900", "KRW", "month", 1)
	yearly := env.CreatePlan("99.00", "USD", "year", 1)
	cus := env.Customer("ok")
	m := env.Subscribe(cus, monthly).JSON(t)["id"].(string)
	y := env.Subscribe(env.Customer("ok"), yearly).JSON(t)["id"].(string)

	env.Advance("744h") // 31 days: every monthly anchor has passed once
	invs := invoicesOf(t, env, m)
	require.Len(t, invs, 2)
	require.Equal(t, "renewal", invs[1]["kind"])
	require.Equal(t, "paid", invs[1]["status"])
	require.Len(t, invoicesOf(t, env, y), 1)

	env.Advance(fmt.Sprintf("%dh", 24*335))
	invs = invoicesOf(t, env, m)
	require.Len(t, invs, 13, "a year of monthly renewals plus the first invoice")
	for i := 1; i < len(invs); i++ {
		require.Equal(t, invs[i-1]["period_end"], invs[i]["period_start"], "periods are contiguous and in order")
		require.Equal(t, "paid", invs[i]["status"])
	}
	require.Len(t, invoicesOf(t, env, y), 2, "the yearly plan renewed once")
	sub := env.Subscription(m)
	require.Equal(t, "active", sub["status"])
	require.Equal(t, invs[12]["period_end"], sub["current_period_end"])
	requireOneChargePerInvoice(t, env)
	require.Len(t, env.Sim().Charges(), 13+2)
	env.RequireBalanced()
}

// Crash points on the charge path. A failpoint stops the work where a crash would; then the process is
// replaced by a fresh one on the same database and gateway, and time moves on.
// chargeCrashPoints are the places on the charge path where a process can die with the most at stake: the
// hooks fail (the caller sees an error, as after a kill) while fail is set.
var chargeCrashPoints = []struct {
	name  string
	hooks func(fail *atomic.Bool) billing.Hooks
}{
	{"after the attempt commits, before the gateway call", func(fail *atomic.Bool) billing.Hooks {
		return billing.Hooks{BeforeCharge: func(string) error { return crashIf(fail) }}
	}},
	{"after the gateway succeeded, before the outcome commits", func(fail *atomic.Bool) billing.Hooks {
		return billing.Hooks{AfterCharge: func(string, gateway.Outcome) error { return crashIf(fail) }}
	}},
	{"after the outcome commits, before the caller returns", func(fail *atomic.Bool) billing.Hooks {
		return billing.Hooks{AfterRecord: func(string) error { return crashIf(fail) }}
	}},
}

func TestCrashPointsChargeExactlyOnce(t *testing.T) {
	t.Parallel()
	for _, p := range chargeCrashPoints {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			var fail atomic.Bool
			sim := pgsim.New(pgsim.Options{Seed: 1, SecretKey: "test_sk_sim"})
			simURL := serve(t, sim)
			first := testenv.New(t, testenv.Options{SimURL: simURL, App: app.Options{Hooks: p.hooks(&fail)}})
			plan := first.CreatePlan("9900", "KRW", "month", 1)
			cus := first.Customer("ok")
			sub := first.Subscribe(cus, plan)
			require.Equal(t, 201, sub.Status, string(sub.Body))
			subID := sub.JSON(t)["id"].(string)

			fail.Store(true) // the renewal crashes at the failpoint
			first.Advance("744h")
			first.Stop()

			second := testenv.New(t, testenv.Options{DBURL: first.DBURL, SimURL: simURL})
			second.Advance("24h") // the reconciler's lookups (1 min, 5 min, ...) come due
			invs := invoicesOf(t, second, subID)
			require.Len(t, invs, 2)
			require.Equal(t, "paid", invs[1]["status"])
			charges := map[string]int{}
			for _, c := range sim.Charges() {
				charges[c.OrderID]++
			}
			require.Len(t, sim.Charges(), 2, "one charge for the first invoice, one for the renewal: %v", charges)
			for id, n := range charges {
				require.Equal(t, 1, n, id)
			}
			require.Equal(t, 0, second.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status IN ('pending', 'unknown')`))
			require.Equal(t, 1, second.QueryInt(`SELECT count(*) FROM ledger_transactions WHERE kind = 'payment' AND reference IN
				(SELECT id FROM payment_attempts WHERE invoice_id = $1)`, invs[1]["id"]))
			require.Equal(t, "active", second.Subscription(subID)["status"])
			second.RequireBalanced()
		})
	}
}

var errCrash = errors.New("failpoint: simulated crash")

func crashIf(fail *atomic.Bool) error {
	if fail.Load() {
		return errCrash
	}
	return nil
}

// Three replicas on one database renew the same due subscriptions at once: each is charged exactly once
// per period. What the fences are tested against is concurrent claims, not volume: the batch is shrunk to
// a handful of subscriptions (app.Options.RenewBatchSize) so that a few dozen subscriptions make many
// batches, and each replica runs at most two jobs at a time (BILLING_WORKERS), so the four batch slots
// cannot all be held by one replica; the test checks that batches were claimed on more than one replica
// and that the batches together renewed every subscription exactly once.
func TestThreeReplicasChargeEachSubscriptionOncePerPeriod(t *testing.T) {
	t.Parallel()
	const (
		n         = 120
		batchSize = 4
	)
	sim := pgsim.New(pgsim.Options{Seed: 2, SecretKey: "test_sk_sim"})
	simURL := serve(t, sim)
	var batchMu sync.Mutex
	batches := map[string][]int{} // replica -> the sizes of the batches it committed
	replica := func(name, dbURL, role string) *testenv.Env {
		hooks := billing.Hooks{BatchCommitted: func(ids []string) error {
			batchMu.Lock()
			defer batchMu.Unlock()
			batches[name] = append(batches[name], len(ids))
			return nil
		}}
		return testenv.New(t, testenv.Options{DBURL: dbURL, SimURL: simURL,
			Env: map[string]string{"BILLING_ROLE": role, "BILLING_WORKERS": "2"},
			App: app.Options{Hooks: hooks, RenewBatchSize: batchSize}})
	}
	a := replica("a", "", "all")
	replica("b", a.DBURL, "worker")
	replica("c", a.DBURL, "worker")
	plan := a.CreatePlan("9900", "KRW", "month", 1)

	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				res := a.Subscribe(a.Customer("ok"), plan)
				require.Equal(t, 201, res.Status, string(res.Body))
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	require.Len(t, sim.Charges(), n)

	a.Advance("744h") // every subscription renews once, all at the same instant
	require.Equal(t, 2*n, a.QueryInt(`SELECT count(*) FROM invoices WHERE status = 'paid'`))
	perInvoice := map[string]int{}
	for _, ch := range sim.Charges() {
		perInvoice[ch.OrderID[:strings.LastIndex(ch.OrderID, "-")]]++
	}
	require.Len(t, sim.Charges(), 2*n)
	for id, k := range perInvoice {
		require.Equal(t, 1, k, "invoice %s", id)
	}
	require.Equal(t, n, a.QueryInt(`SELECT count(DISTINCT subscription_id) FROM invoices WHERE kind = 'renewal' AND status = 'paid'`))
	require.Equal(t, 0, a.QueryInt(`SELECT count(*) FROM (SELECT subscription_id, period_start FROM invoices GROUP BY 1, 2 HAVING count(*) > 1) d`))
	a.RequireBalanced()

	// The renewals went through the batch path, in many batches, claimed concurrently on several replicas.
	batchMu.Lock()
	defer batchMu.Unlock()
	renewed, count := 0, 0
	for _, sizes := range batches {
		for _, k := range sizes {
			require.LessOrEqual(t, k, batchSize)
			renewed += k
			count++
		}
	}
	t.Logf("batches per replica: %v", batches)
	require.Equal(t, n, renewed, "every renewal in exactly one committed batch")
	require.GreaterOrEqual(t, count, n/batchSize)
	require.GreaterOrEqual(t, len(batches), 2, "batches were claimed on more than one replica: %v", batches)
}

// A gateway outage is not delinquency: nothing enters dunning, and everything is charged once it is back.
func TestGatewayOutageDoesNotEnterDunning(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	var subs []string
	for i := 0; i < 5; i++ {
		res := env.Subscribe(env.Customer("ok"), plan)
		require.Equal(t, 201, res.Status)
		subs = append(subs, res.JSON(t)["id"].(string))
	}
	env.AdvanceToRenewal(subs[0], -time.Hour) // just before the renewals (all made at one instant)
	env.Sim().SetFaults(pgsim.Faults{Outage: &pgsim.OutageFault{}})
	env.Advance("2h") // the renewals come due an hour into the outage, which lasts another hour
	for _, id := range subs {
		require.Equal(t, "active", env.Subscription(id)["status"])
	}
	require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM events WHERE type IN ('subscription.past_due', 'payment.failed')`))
	require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status = 'declined'`))

	env.Sim().ClearFaults()
	env.Advance("3h") // the reconciler's lookups (1 min, 5 min, 30 min, 2 h) come due
	for _, id := range subs {
		invs := invoicesOf(t, env, id)
		require.Len(t, invs, 2)
		require.Equal(t, "paid", invs[1]["status"], "renewal of %s: %v", id, invs[1])
	}
	require.Len(t, env.Sim().Charges(), 10)
	requireOneChargePerInvoice(t, env)
	require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM events WHERE type = 'subscription.past_due'`))
	env.RequireBalanced()
}

// A charge in flight when the customer cancels, and declined afterwards, does not leave its invoice open
// forever: it is closed like the cancel closed the others (void, nothing was collected). Found by chaos.
func TestDeclineAfterCancelVoidsTheInvoice(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer("ok")
	sub := env.Subscribe(cus, plan).JSON(t)["id"].(string)

	env.AdvanceToRenewal(sub, -time.Hour)
	env.Sim().SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{Error5xxBeforeCommit: &pgsim.Rule{Count: 1}}})
	env.Advance("1h") // the renewal's charge: 5xx before commit, outcome unknown
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status = 'unknown'`))

	res := env.Do("POST", "/v1/subscriptions/"+sub+"/cancel", testenv.ServiceToken, map[string]any{"at_period_end": false, "reason": "leaving"})
	require.Equal(t, 200, res.Status, string(res.Body))
	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+cus, "insufficient"))
	env.Advance("2m") // the lookup finds nothing, the resend is declined

	invs := invoicesOf(t, env, sub)
	require.Len(t, invs, 2)
	require.Equal(t, "void", invs[1]["status"])
	require.Equal(t, "canceled", env.Subscription(sub)["status"])
	require.Len(t, env.Sim().Charges(), 1, "only the first invoice was ever charged")
	env.RequireBalanced()
}
