package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/reconcile"
)

type findingBody struct {
	ID             string   `json:"id"`
	Kind           string   `json:"kind"`
	OrderID        string   `json:"order_id"`
	Status         string   `json:"status"`
	PaymentKey     *string  `json:"payment_key"`
	AttemptID      *string  `json:"attempt_id"`
	OurAmount      *string  `json:"our_amount"`
	TheirAmount    *string  `json:"their_amount"`
	Currency       *string  `json:"currency"`
	Resolution     *string  `json:"resolution"`
	ResolvedBy     *string  `json:"resolved_by"`
	AllowedActions []string `json:"allowed_actions"`
}

func findings(t *testing.T, env *testenv.Env, query string) []findingBody {
	t.Helper()
	res := env.Do("GET", "/v1/support/reconciliation"+query, testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	var list struct {
		Data       []findingBody `json:"data"`
		NextCursor *string       `json:"next_cursor"`
	}
	res.Decode(t, &list)
	return list.Data
}

func domainNow(t *testing.T, env *testenv.Env) time.Time {
	t.Helper()
	res := env.Do("GET", "/v1/test-clock", testenv.AdminToken, nil)
	require.Equal(t, 200, res.Status)
	var c struct {
		Now time.Time `json:"now"`
	}
	res.Decode(t, &c)
	return c.Now
}

func resolve(env *testenv.Env, id string, body map[string]any) testenv.Response {
	return env.Do("POST", "/v1/support/reconciliation/findings/"+id+"/resolve", testenv.SupportToken, body)
}

// Money the gateway holds that we never asked for, an amount changed at the gateway, and a refund made in
// its dashboard are each found, shown to support, and left alone until support acts; cancelling at the
// gateway happens only on support's explicit request.
func TestReconciliationFindsGatewayMismatchesAndOnlySupportReversesThem(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	_, agreed := subscribed(t, env, plan, "ok")
	_, altered := subscribed(t, env, plan, "ok")
	_, refunded := subscribed(t, env, plan, "ok")
	now := domainNow(t, env)

	_, err := env.Sim().Plant("planted-0001", pgsim.Plant{Amount: decimal.NewFromInt(5000), ApprovedAt: now})
	require.NoError(t, err)
	_, err = env.Sim().Plant(orderOf(t, env, altered.ID), pgsim.Plant{Amount: decimal.NewFromInt(12000)})
	require.NoError(t, err)
	c, _ := env.Sim().Charge(orderOf(t, env, refunded.ID))
	require.NoError(t, env.App.Gateways["sim"].Cancel(ctx, c.PaymentKey, "refunded in the dashboard", decimal.Zero, "dash-1"))
	ledger := env.QueryInt(`SELECT count(*) FROM ledger_entries`)

	run, err := env.App.Reconcile.Run(ctx, "sim", now.Add(-24*time.Hour), now.Add(24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, "completed", run.Status)
	require.Equal(t, 1, run.Matched, "the untouched payment agrees")
	require.Equal(t, 3, run.Findings)
	require.Equal(t, 3, run.NewFindings)

	byKind := map[string]findingBody{}
	for _, f := range findings(t, env, "?status=mismatch") {
		require.Equal(t, "open", f.Status)
		byKind[f.Kind] = f
	}
	require.Len(t, byKind, 3)
	here := byKind[reconcile.MissingHere]
	require.Equal(t, "planted-0001", here.OrderID)
	require.Equal(t, "5000", *here.TheirAmount)
	require.Nil(t, here.OurAmount)
	require.Nil(t, here.AttemptID)
	require.NotNil(t, here.PaymentKey)
	require.Equal(t, []string{"cancel_at_gateway", "dismiss"}, here.AllowedActions)
	mismatch := byKind[reconcile.AmountMismatch]
	require.Equal(t, orderOf(t, env, altered.ID), mismatch.OrderID)
	require.Equal(t, "9900", *mismatch.OurAmount)
	require.Equal(t, "12000", *mismatch.TheirAmount)
	require.NotNil(t, mismatch.AttemptID)
	require.Equal(t, []string{"dismiss"}, mismatch.AllowedActions)
	there := byKind[reconcile.MissingThere]
	require.Equal(t, orderOf(t, env, refunded.ID), there.OrderID)
	require.Equal(t, "9900", *there.OurAmount)
	require.Equal(t, "0", *there.TheirAmount)

	// Nothing happened on its own: the stray charge is still collected, our books are as they were.
	planted, _ := env.Sim().Charge("planted-0001")
	require.Equal(t, "DONE", planted.Status)
	require.Equal(t, ledger, env.QueryInt(`SELECT count(*) FROM ledger_entries`))
	require.Equal(t, 3, env.QueryInt(`SELECT count(*) FROM payment_attempts`))
	require.Equal(t, "active", readSubscription(t, env, refunded.ID).Status)
	require.Equal(t, "active", readSubscription(t, env, agreed.ID).Status)

	// Reconciling the window again finds the same three and stores nothing new.
	again, err := env.App.Reconcile.Run(ctx, "sim", now.Add(-24*time.Hour), now.Add(24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, 3, again.Findings)
	require.Zero(t, again.NewFindings)
	require.Equal(t, 3, env.QueryInt(`SELECT count(*) FROM reconciliation_findings`))
	metrics := string(env.Do("GET", "/metrics", "", nil).Body)
	require.Contains(t, metrics, `billing_reconciliation_findings_total{gateway="sim",kind="missing_here"} 1`)
	require.Contains(t, metrics, `billing_reconciliation_findings_total{gateway="sim",kind="amount_mismatch"} 1`)

	// Support's actions.
	require.Equal(t, 403, env.Do("GET", "/v1/support/reconciliation", testenv.ServiceToken, nil).Status)
	require.Equal(t, 403, env.Do("POST", "/v1/support/reconciliation/findings/"+here.ID+"/resolve", testenv.ServiceToken,
		map[string]any{"action": "dismiss", "reason": "x"}).Status)
	res := resolve(env, mismatch.ID, map[string]any{"action": "cancel_at_gateway", "reason": "ticket 12"})
	require.Equal(t, 409, res.Status, string(res.Body))
	require.Equal(t, []any{"dismiss"}, res.JSON(t)["allowed"])
	res = resolve(env, here.ID, map[string]any{"action": "cancel_at_gateway"})
	require.Equal(t, 422, res.Status, string(res.Body))
	res = resolve(env, here.ID, map[string]any{"action": "refund", "reason": "x"})
	require.Equal(t, 422, res.Status, string(res.Body))
	require.Equal(t, 404, resolve(env, "recf_nope", map[string]any{"action": "dismiss", "reason": "x"}).Status)
	planted, _ = env.Sim().Charge("planted-0001")
	require.Equal(t, "DONE", planted.Status, "refused requests cancel nothing")

	res = resolve(env, here.ID, map[string]any{"action": "cancel_at_gateway", "reason": "ticket 12: not our charge"})
	require.Equal(t, 200, res.Status, string(res.Body))
	var done findingBody
	res.Decode(t, &done)
	require.Equal(t, "resolved", done.Status)
	require.Equal(t, "canceled_at_gateway", *done.Resolution)
	require.NotEmpty(t, *done.ResolvedBy)
	require.Empty(t, done.AllowedActions)
	planted, _ = env.Sim().Charge("planted-0001")
	require.Equal(t, "CANCELED", planted.Status)
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM audit_log WHERE action = 'reconciliation.cancel_at_gateway' AND target_id = $1`, here.ID))
	res = resolve(env, here.ID, map[string]any{"action": "cancel_at_gateway", "reason": "again"})
	require.Equal(t, 409, res.Status, string(res.Body))
	require.Equal(t, []any{}, res.JSON(t)["allowed"])
	planted, _ = env.Sim().Charge("planted-0001")
	require.Len(t, planted.Cancels, 1, "one refund")

	require.Equal(t, 200, resolve(env, mismatch.ID, map[string]any{"action": "dismiss", "reason": "gateway corrected it"}).Status)
	require.Equal(t, 200, resolve(env, there.ID, map[string]any{"action": "dismiss", "reason": "refund agreed with the customer"}).Status)
	require.Len(t, findings(t, env, "?status=resolved"), 3)
	require.Empty(t, findings(t, env, "?status=open"))
	require.Len(t, findings(t, env, "?kind=missing_here"), 1)
	require.Len(t, findings(t, env, "?limit=2"), 2)
	require.Equal(t, 422, env.Do("GET", "/v1/support/reconciliation?status=bogus", testenv.SupportToken, nil).Status)

	// The cancelled stray charge now nets to zero at the gateway, as on our side: nothing new.
	last, err := env.App.Reconcile.Run(ctx, "sim", now.Add(-24*time.Hour), now.Add(24*time.Hour))
	require.NoError(t, err)
	require.Zero(t, last.NewFindings)
	require.Equal(t, 2, last.Findings, "the amount and the dashboard refund still disagree (resolved, not repeated)")
	env.RequireBalanced()
}

// The daily job reconciles the previous day of the domain clock once; asking again does nothing.
func TestDailyReconciliationCoversThePreviousDomainDayOnce(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	subscribed(t, env, plan, "ok")
	_, err := env.Sim().Plant("planted-daily", pgsim.Plant{Amount: decimal.NewFromInt(700), ApprovedAt: domainNow(t, env)})
	require.NoError(t, err)

	now := env.Advance("24h")
	from, to := reconcile.PreviousDay(now)
	_, err = env.App.Reconcile.RunDaily(ctx, []string{"sim"})
	require.NoError(t, err)
	// This call or the periodic job (which runs on start) did it; findings are stored once either way.
	require.GreaterOrEqual(t, env.QueryInt(`SELECT count(*) FROM reconciliation_runs WHERE gateway = 'sim' AND window_from = $1
		AND window_to = $2 AND status = 'completed'`, from, to), 1)
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM reconciliation_findings WHERE order_id = 'planted-daily' AND kind = 'missing_here'`))
	runs, err := env.App.Reconcile.RunDaily(ctx, []string{"sim"})
	require.NoError(t, err)
	require.Empty(t, runs, "already reconciled")
	require.Len(t, findings(t, env, "?status=mismatch"), 1, "our own payment matched")
}
