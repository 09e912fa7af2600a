package billing_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// A batch renewal's charge and anything else that reaches the gateway for the same order before it (a
// customer's GET, which looks the subscription's unresolved attempts up at once, or the scheduled lookup
// when the batch's send is slow) must end in one charge and a paid invoice. Found by the billing-day
// benchmark with GETs at 500/s: the GET's lookup found the batch's order not yet at the gateway and resent
// it, the resend (whose body carried a tax-free amount the batch's did not) charged, the batch's own send
// was refused as "Idempotency-Key was used with a different request", and the attempt was recorded failed
// while the gateway had the money: the invoice stayed open for a second charge.

// raceBeforeBatchSend renews one subscription through the batch, running race (once, with the attempt's
// id) after the attempt is committed and counted as sent but before the batch's request leaves.
func raceBeforeBatchSend(t *testing.T, wrap func(http.Handler) http.Handler, race func(env *testenv.Env, sub, attemptID string)) (*testenv.Env, *pgsim.Server, string, string) {
	t.Helper()
	var env *testenv.Env
	var sub string
	var armed, batched atomic.Bool
	hooks := billing.Hooks{
		BatchCommitted: func([]string) error { batched.Store(true); return nil },
		BeforeCharge: func(attemptID string) error {
			if armed.CompareAndSwap(true, false) {
				race(env, sub, attemptID)
			}
			return nil
		},
	}
	sim := pgsim.New(pgsim.Options{Seed: 1, SecretKey: "test_sk_sim"})
	var h http.Handler = sim
	if wrap != nil {
		h = wrap(sim)
	}
	env = testenv.New(t, testenv.Options{SimURL: serve(t, h), App: app.Options{Hooks: hooks}})
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	res := env.Subscribe(env.Customer("ok"), plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub = res.JSON(t)["id"].(string)

	armed.Store(true)
	env.AdvanceToRenewal(sub, 0)
	require.False(t, armed.Load(), "the race ran")
	require.True(t, batched.Load(), "the renewal went through the batch")
	var attID, invID string
	require.NoError(t, env.App.Pool.QueryRow(context.Background(), `
		SELECT a.id, a.invoice_id FROM payment_attempts a JOIN invoices i ON i.id = a.invoice_id
		WHERE i.subscription_id = $1 AND i.kind = 'renewal'`, sub).Scan(&attID, &invID))
	return env, sim, attID, invID
}

func requireRenewalPaidOnce(t *testing.T, env *testenv.Env, sim *pgsim.Server, attID, invID string) {
	t.Helper()
	require.Equal(t, "succeeded", readSends(t, env, attID).status)
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM invoices WHERE id = $1 AND status = 'paid'`, invID), "the renewal invoice is paid")
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1`, invID), "one attempt, no retry")
	renewals := 0
	for _, c := range sim.Charges() {
		if c.OrderID == invID+"-1" {
			renewals++
		}
	}
	require.Equal(t, 1, renewals, "the renewal's order is charged once at the gateway")
	env.Advance("72h") // retries and lookups that a wrongly failed attempt would schedule
	require.Equal(t, 2, len(sim.Charges()), "the first invoice and the renewal, nothing more")
	env.RequireBalanced()
}

// A customer's GET while the batch's charge is on its way looks the attempt up but does not resend it.
func TestGetDuringABatchChargeDoesNotResendIt(t *testing.T) {
	t.Parallel()
	env, sim, attID, invID := raceBeforeBatchSend(t, nil, func(env *testenv.Env, sub, _ string) {
		res := env.Do("GET", "/v1/subscriptions/"+sub, testenv.ServiceToken, nil)
		require.Equal(t, 200, res.Status, string(res.Body))
	})
	requireRenewalPaidOnce(t, env, sim, attID, invID)
	require.Equal(t, 1, readSends(t, env, attID).count, "only the batch sent the order")
}

// When the scheduled lookup resends ahead of a slow batch send, both sends are the same request, so the
// gateway answers the second with the first's answer: one charge, the attempt succeeded. Here the order is
// the one that lost money: the lookup finds nothing, the batch's request arrives and charges, and only
// then the resend arrives (secondSendFirst holds it back until the batch's request is through).
func TestAResendAheadOfTheBatchSendIsTheSameRequest(t *testing.T) {
	t.Parallel()
	reorder := &secondSendFirst{held: make(chan struct{})}
	env, sim, attID, invID := raceBeforeBatchSend(t, reorder.wrap, func(env *testenv.Env, _, attemptID string) {
		_, err := env.App.Pool.Exec(context.Background(), `UPDATE payment_attempts SET next_lookup_at = $2 WHERE id = $1`, attemptID, env.Now().Add(-1))
		require.NoError(t, err)
		reorder.armed.Store(true)
		go func() {
			// The scheduled lookup: not found at the gateway, so it resends the same order.
			_, err := env.App.Billing.ResolveAttempt(context.Background(), attemptID, billing.ResolveOptions{})
			reorder.resolved <- err
		}()
		<-reorder.held // the resend is at the gateway's door; now the batch sends
	})
	require.NoError(t, <-reorder.resolved)
	requireRenewalPaidOnce(t, env, sim, attID, invID)
	require.Equal(t, 2, readSends(t, env, attID).count, "the resend and the batch's send")
}

// secondSendFirst delays the first charge request it sees once armed until a second one has been answered.
type secondSendFirst struct {
	armed    atomic.Bool
	held     chan struct{}
	second   chan struct{}
	resolved chan error
	seen     atomic.Int32
}

func (r *secondSendFirst) wrap(next http.Handler) http.Handler {
	r.second = make(chan struct{})
	r.resolved = make(chan error, 1)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !r.armed.Load() || req.Method != http.MethodPost || !strings.HasPrefix(req.Header.Get("Idempotency-Key"), "charge-") {
			next.ServeHTTP(w, req)
			return
		}
		switch r.seen.Add(1) {
		case 1:
			close(r.held)
			<-r.second
		case 2:
			defer close(r.second)
		}
		next.ServeHTTP(w, req)
	})
}

// The batch sends the invoice's tax-free part like a single charge does: an invoice without tax is all
// tax-free, so the gateway reports no VAT for it (Toss computes VAT as (amount - taxFreeAmount) / 11).
func TestBatchChargeSendsTheTaxFreeAmount(t *testing.T) {
	t.Parallel()
	env, sim, _, invID := raceBeforeBatchSend(t, nil, func(*testenv.Env, string, string) {})
	c, ok := sim.Charge(invID + "-1")
	require.True(t, ok)
	var taxFree string
	require.NoError(t, env.App.Pool.QueryRow(context.Background(), `SELECT tax_free::text FROM invoices WHERE id = $1`, invID).Scan(&taxFree))
	require.Equal(t, "9900.0000", taxFree)
	require.Equal(t, "9900", c.TaxFreeAmount.String())
}
