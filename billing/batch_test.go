package billing_test

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// batchKillPoints are the new places a batch renewal can die with money at stake. Each failpoint stops the
// batch where a SIGKILL would (nothing after it runs: no charge, no outcome recorded) and the process is
// replaced by a fresh one on the same database and gateway.
var batchKillPoints = []struct {
	name  string
	sent  func(n int) (lo, hi int) // renewal charges at the gateway when the process dies
	hooks func(fail *atomic.Bool, n int) billing.Hooks
}{
	{"after the batch commits, before any charge", func(int) (int, int) { return 0, 0 }, func(fail *atomic.Bool, _ int) billing.Hooks {
		return billing.Hooks{BatchCommitted: func([]string) error { return crashIf(fail) }}
	}},
	{"halfway through the batch's charges", func(n int) (int, int) { return n / 2, n / 2 }, func(fail *atomic.Bool, n int) billing.Hooks {
		var sent atomic.Int32
		return billing.Hooks{BeforeCharge: func(string) error {
			if fail.Load() && int(sent.Add(1)) > n/2 {
				return errCrash
			}
			return nil
		}}
	}},
	{"after the charges, before their outcomes are recorded", func(n int) (int, int) { return n, n }, func(fail *atomic.Bool, _ int) billing.Hooks {
		return billing.Hooks{AfterCharge: func(string, gateway.Outcome) error { return crashIf(fail) }}
	}},
}

func TestBatchKillPointsChargeExactlyOnce(t *testing.T) {
	t.Parallel()
	const n = 24
	for _, p := range batchKillPoints {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			var fail atomic.Bool
			var batchMu sync.Mutex
			var batched []int
			hooks := p.hooks(&fail, n)
			inner := hooks.BatchCommitted
			hooks.BatchCommitted = func(ids []string) error {
				batchMu.Lock()
				batched = append(batched, len(ids))
				batchMu.Unlock()
				if inner != nil {
					return inner(ids)
				}
				return nil
			}
			sim := pgsim.New(pgsim.Options{Seed: 1, SecretKey: "test_sk_sim"})
			simURL := serve(t, sim)
			first := testenv.New(t, testenv.Options{SimURL: simURL, App: app.Options{Hooks: hooks}})
			plan := first.CreatePlan("9900", "KRW", "month", 1)
			subs := make([]string, n)
			for i := range subs {
				res := first.Subscribe(first.Customer("ok"), plan)
				require.Equal(t, 201, res.Status, string(res.Body))
				subs[i] = res.JSON(t)["id"].(string)
			}

			fail.Store(true) // the batch dies at the kill point
			first.AdvanceToRenewal(subs[0], 0)
			committed := renewalAttempts(first)
			first.Stop()
			batchMu.Lock()
			require.Equal(t, []int{n}, batched, "the %d renewals went out as one batch", n)
			batchMu.Unlock()
			lo, hi := p.sent(n)
			require.Equal(t, n, committed, "every renewal is committed as one batch before the kill")
			renewals := len(sim.Charges()) - n
			require.True(t, renewals >= lo && renewals <= hi, "%d renewal charges reached the gateway before the kill, want %d..%d", renewals, lo, hi)

			second := testenv.New(t, testenv.Options{DBURL: first.DBURL, SimURL: simURL})
			second.Advance("24h") // the sweeper's lookups (1 min, 5 min, ...) come due
			require.Equal(t, 0, second.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status IN ('pending', 'unknown')`))
			require.Equal(t, n, second.QueryInt(`SELECT count(*) FROM invoices WHERE kind = 'renewal' AND status = 'paid'`), "every invoice settles")
			require.Equal(t, 0, second.QueryInt(`SELECT count(*) FROM invoices WHERE status <> 'paid'`))
			require.Len(t, sim.Charges(), 2*n, "one charge per first invoice and per renewal, none lost, none doubled")
			perInvoice := map[string]int{}
			for _, c := range sim.Charges() {
				require.Equal(t, "DONE", c.Status)
				inv := c.OrderID[:strings.LastIndex(c.OrderID, "-")]
				perInvoice[inv]++
				require.Equal(t, 1, second.QueryInt(`SELECT count(*) FROM invoices WHERE id = $1 AND status = 'paid' AND amount_paid = $2`, inv, c.Amount),
					"charge %s belongs to a paid invoice of %s", c.OrderID, c.Amount)
			}
			for inv, k := range perInvoice {
				require.Equal(t, 1, k, "invoice %s charged %d times", inv, k)
			}
			require.Equal(t, n, second.QueryInt(`SELECT count(*) FROM ledger_transactions WHERE kind = 'payment' AND reference IN
				(SELECT a.id FROM payment_attempts a JOIN invoices i ON i.id = a.invoice_id WHERE i.kind = 'renewal')`))
			for _, id := range subs {
				require.Equal(t, "active", second.Subscription(id)["status"])
			}
			second.RequireBalanced()
		})
	}
}

// renewalAttempts counts the renewal invoices committed with a pending first attempt or better.
func renewalAttempts(env *testenv.Env) int {
	return env.QueryInt(`SELECT count(*) FROM invoices i JOIN payment_attempts a ON a.invoice_id = i.id WHERE i.kind = 'renewal' AND a.seq = 1`)
}
