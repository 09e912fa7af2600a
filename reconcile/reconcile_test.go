package reconcile_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/reconcile"
)

// gatewayView is the gateway as reconciliation sees it: the real sim adapter, with the transaction list
// and the lookups replaceable per test. Only the gateway boundary is faked.
type gatewayView struct {
	gateway.Gateway
	transactions func(ctx context.Context, from, to time.Time) ([]gateway.Transaction, error)
	lookup       func(ctx context.Context, orderID string) (gateway.Outcome, error)
}

func (g *gatewayView) Transactions(ctx context.Context, from, to time.Time) ([]gateway.Transaction, error) {
	if g.transactions != nil {
		return g.transactions(ctx, from, to)
	}
	return g.Gateway.Transactions(ctx, from, to)
}

func (g *gatewayView) Lookup(ctx context.Context, orderID string) (gateway.Outcome, error) {
	if g.lookup != nil {
		return g.lookup(ctx, orderID)
	}
	return g.Gateway.Lookup(ctx, orderID)
}

type gateways map[string]gateway.Gateway

func (g gateways) Get(name string) (gateway.Gateway, bool) { gw, ok := g[name]; return gw, ok }

type bundle struct {
	env  *testenv.Env
	view *gatewayView
	rec  *reconcile.Service
	plan string
	now  time.Time
}

func setup(t *testing.T) *bundle {
	t.Helper()
	env := testenv.New(t)
	view := &gatewayView{Gateway: env.App.Gateways["sim"]}
	rec := reconcile.New(reconcile.Config{Pool: env.App.Pool, Payments: env.App.Billing, Clock: env.App.Clock, Gateways: gateways{"sim": view},
		Log: slog.New(slog.DiscardHandler)})
	return &bundle{env: env, view: view, rec: rec, plan: env.CreatePlan("9900", "KRW", "month", 1), now: env.App.Clock.Now()}
}

// run reconciles a window wide enough for everything the test did.
func (b *bundle) run(t *testing.T) reconcile.Run {
	t.Helper()
	run, err := b.rec.Run(context.Background(), "sim", b.now.Add(-time.Hour), b.now.Add(time.Hour))
	require.NoError(t, err)
	return run
}

func (b *bundle) subscribe(t *testing.T, behavior string) string {
	t.Helper()
	res := b.env.Subscribe(b.env.Customer(behavior), b.plan)
	require.Contains(t, []int{201, 202, 402}, res.Status, string(res.Body))
	var order string
	require.NoError(t, b.env.App.Pool.QueryRow(context.Background(), `SELECT order_id FROM payment_attempts ORDER BY created_at DESC LIMIT 1`).Scan(&order))
	return order
}

func (b *bundle) finding(t *testing.T, orderID string) (kind string, attempt *string) {
	t.Helper()
	require.NoError(t, b.env.App.Pool.QueryRow(context.Background(),
		`SELECT kind, attempt_id FROM reconciliation_findings WHERE order_id = $1`, orderID).Scan(&kind, &attempt))
	return kind, attempt
}

// A gateway whose clock is not ours lists our charges on another day: the lookups confirm them, so
// nothing is reported.
func TestChargesListedOnAnotherDayStillMatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.subscribe(t, "ok")
	b.subscribe(t, "ok")
	b.view.transactions = func(context.Context, time.Time, time.Time) ([]gateway.Transaction, error) { return nil, nil }
	run := b.run(t)
	require.Equal(t, 2, run.Matched)
	require.Zero(t, run.Findings)
	require.Zero(t, run.Unverified)
}

// A charge the gateway holds for an attempt we recorded as declined is money we have not booked.
func TestGatewayMoneyForADeclinedAttemptIsMissingHere(t *testing.T) {
	t.Parallel()
	b := setup(t)
	order := b.subscribe(t, "insufficient")
	require.Equal(t, 1, b.env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status = 'declined'`))
	_, err := b.env.Sim().Plant(order, pgsim.Plant{Amount: decimal.NewFromInt(9900), ApprovedAt: b.now})
	require.NoError(t, err)

	run := b.run(t)
	require.Equal(t, 1, run.NewFindings)
	kind, attempt := b.finding(t, order)
	require.Equal(t, reconcile.MissingHere, kind)
	require.NotNil(t, attempt, "the finding names our declined attempt")
}

// When the gateway cannot confirm a disagreement now, nothing is reported on a guess.
func TestUnconfirmedDisagreementsAreNotFindings(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.subscribe(t, "ok")
	b.view.transactions = func(context.Context, time.Time, time.Time) ([]gateway.Transaction, error) { return nil, nil }
	b.view.lookup = func(context.Context, string) (gateway.Outcome, error) {
		return gateway.Outcome{Kind: gateway.Unknown, Reason: "gateway 503"}, nil
	}
	run := b.run(t)
	require.Equal(t, 1, run.Unverified)
	require.Zero(t, run.Findings)

	b.view.lookup = func(context.Context, string) (gateway.Outcome, error) {
		return gateway.Outcome{}, &gateway.TryLaterError{Gateway: "sim", Cause: "rate limited"}
	}
	run = b.run(t)
	require.Equal(t, 1, run.Unverified)

	b.view.lookup = func(context.Context, string) (gateway.Outcome, error) {
		return gateway.Outcome{Kind: gateway.NotFound}, nil
	}
	run = b.run(t)
	require.Equal(t, 1, run.NewFindings, "confirmed absent at the gateway")
	require.Equal(t, 1, b.env.QueryInt(`SELECT count(*) FROM reconciliation_findings WHERE kind = 'missing_there'`))
}

// An attempt whose outcome is still unknown belongs to the reconciler's lookups, not to a finding.
func TestUnsettledAttemptsAreLeftToTheReconciler(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.env.Sim().SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{CommitThenTimeout: &pgsim.CommitThenTimeoutFault{Rule: pgsim.Rule{Count: 1}}}})
	b.subscribe(t, "ok")
	require.Equal(t, 1, b.env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status = 'unknown'`))
	run := b.run(t)
	require.Equal(t, 1, run.Unsettled)
	require.Zero(t, run.Findings)
	require.Equal(t, 1, b.env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status = 'unknown'`), "reconciliation changes nothing")
}

// A charge without an order id of ours (made at the gateway directly, Stripe-style lowercase statuses) is
// still money at the gateway; a fully refunded one holds nothing.
func TestChargesWithoutOurOrderID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.view.transactions = func(context.Context, time.Time, time.Time) ([]gateway.Transaction, error) {
		return []gateway.Transaction{
			{TransactionKey: "ch_1", PaymentKey: "pi_1", Status: "succeeded", At: b.now, Amount: decimal.NewFromInt(3000), Currency: "KRW"},
			{TransactionKey: "ch_2", PaymentKey: "pi_2", Status: "refunded", At: b.now, Amount: decimal.NewFromInt(3000), Currency: "KRW"},
		}, nil
	}
	run := b.run(t)
	require.Equal(t, 1, run.NewFindings)
	require.Equal(t, 1, run.Matched)
	kind, _ := b.finding(t, "txn:ch_1")
	require.Equal(t, reconcile.MissingHere, kind)
}

// A run whose gateway list fails is recorded as failed (never left running) and stores nothing.
func TestFailedRunIsRecorded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.view.transactions = func(context.Context, time.Time, time.Time) ([]gateway.Transaction, error) {
		return nil, errors.New("gateway 500")
	}
	run, err := b.rec.Run(context.Background(), "sim", b.now.Add(-time.Hour), b.now)
	require.ErrorContains(t, err, "gateway 500")
	require.Equal(t, "failed", run.Status)
	require.Equal(t, 1, b.env.QueryInt(`SELECT count(*) FROM reconciliation_runs WHERE id = $1 AND status = 'failed' AND error LIKE '%gateway 500%'`, run.ID))
	require.Equal(t, 0, b.env.QueryInt(`SELECT count(*) FROM reconciliation_findings`))

	_, err = b.rec.Run(context.Background(), "stripe", b.now.Add(-time.Hour), b.now)
	require.ErrorIs(t, err, reconcile.ErrGatewayNotEnabled)
	_, err = b.rec.Run(context.Background(), "sim", b.now, b.now)
	require.Error(t, err, "an empty window")
}

func TestPreviousDayIsTheUTCDayBefore(t *testing.T) {
	t.Parallel()
	kst := time.FixedZone("KST", 9*3600)
	from, to := reconcile.PreviousDay(time.Date(2026, 3, 2, 5, 0, 0, 0, kst)) // 2026-03-01T20:00Z
	require.Equal(t, time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC), from)
	require.Equal(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), to)
}
