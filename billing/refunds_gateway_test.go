package billing_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// creditNotes lists an invoice's credit notes through the API.
func creditNotes(t *testing.T, env *testenv.Env, inv string) []map[string]any {
	t.Helper()
	res := env.Do("GET", "/v1/credit-notes?invoice_id="+inv, testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	var out []map[string]any
	for _, d := range res.JSON(t)["data"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// dashboardCancel cancels at the gateway as someone in its dashboard would: not through billing.
func dashboardCancel(t *testing.T, env *testenv.Env, order string, amount int64, key string) {
	t.Helper()
	c, ok := env.Sim().Charge(order)
	require.True(t, ok)
	require.NoError(t, env.App.Gateways["sim"].Cancel(context.Background(), c.PaymentKey, "dashboard", decimal.NewFromInt(amount), key))
}

// A partial and then a full cancel in the gateway's dashboard reach the books through the gateway's
// webhooks: a credit note each (origin gateway), the refunds account, the attempt reversed at the end, an
// event (and so an outgoing webhook) each. Duplicate webhooks book nothing twice.
func TestDashboardRefundsReachTheBooksByWebhook(t *testing.T) {
	t.Parallel()
	// Two cancels moments apart: the second's webhook waits for the end of the lookup window (made short
	// here; docs/webhooks.md) and then looks the order up again.
	env := testenv.New(t, testenv.Options{App: app.Options{SimWebhooks: true},
		Env: map[string]string{"BILLING_WEBHOOK_LOOKUP_WINDOW": "100ms"}})
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	copies := 2
	env.Sim().SetFaults(pgsim.Faults{Webhooks: &pgsim.WebhookFaults{Copies: &copies}})
	_, _, inv, order := paidInvoice(t, env, plan)

	dashboardCancel(t, env, order, 4000, "dash-1")
	require.Eventually(t, func() bool { return len(creditNotes(t, env, inv)) == 1 }, 10*time.Second, 20*time.Millisecond)
	cn := creditNotes(t, env, inv)[0]
	require.Equal(t, "gateway", cn["origin"])
	require.Equal(t, "refund", cn["method"])
	require.Equal(t, "issued", cn["status"])
	require.Equal(t, "4000", cn["amount"])
	require.Equal(t, "succeeded", cn["refund"].(map[string]any)["status"])
	require.NotNil(t, cn["refund"].(map[string]any)["gateway_refund_id"])
	got := getInv(t, env, inv)
	require.Equal(t, "4000", got["amount_refunded"])
	require.Equal(t, "succeeded", got["attempts"].([]any)[0].(map[string]any)["status"], "part of the payment stayed")

	dashboardCancel(t, env, order, 5900, "dash-2")
	require.Eventually(t, func() bool { return len(creditNotes(t, env, inv)) == 2 }, 10*time.Second, 20*time.Millisecond)
	got = getInv(t, env, inv)
	require.Equal(t, "9900", got["amount_refunded"])
	require.Equal(t, "reversed", got["attempts"].([]any)[0].(map[string]any)["status"])

	// Every copy processed, nothing booked twice.
	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE processed_at IS NULL`) == 0
	}, 10*time.Second, 20*time.Millisecond)
	require.Len(t, creditNotes(t, env, inv), 2)
	require.Equal(t, "9900", accountBalance(t, env, "refunds", "KRW"))
	require.Equal(t, "0", accountBalance(t, env, "clearing:sim", "KRW"))
	require.Equal(t, 2, env.QueryInt(`SELECT count(*) FROM events WHERE type = 'refund.succeeded' AND invoice_id = $1`, inv))
	env.RequireBalanced()
}

// An attempt whose answer was lost, then partly canceled at the gateway, is not a failure: the lookup
// books the payment and the refund, and the invoice is paid with what stayed.
func TestUnknownAttemptPartlyCanceledAtTheGatewayKeepsWhatStayed(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer(pgsim.BehaviorOK)
	env.Sim().SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{CommitThenTimeout: &pgsim.CommitThenTimeoutFault{Rule: pgsim.Rule{Count: 1}}}})
	res := env.Subscribe(cus, plan)
	require.Equal(t, 202, res.Status, string(res.Body))
	sub := res.JSON(t)["id"].(string)
	env.Sim().ClearFaults()
	inv := subInvoices(t, env, sub)[0]
	order := inv["attempts"].([]any)[0].(map[string]any)["order_id"].(string)
	dashboardCancel(t, env, order, 3000, "dash-1")

	env.Advance("2m")
	got := getInv(t, env, inv["id"].(string))
	require.Equal(t, "paid", got["status"])
	require.Equal(t, "3000", got["amount_refunded"])
	require.Equal(t, "succeeded", got["attempts"].([]any)[0].(map[string]any)["status"])
	require.Len(t, creditNotes(t, env, inv["id"].(string)), 1)
	require.Equal(t, "6900", accountBalance(t, env, "clearing:sim", "KRW"))
	require.Equal(t, "3000", accountBalance(t, env, "refunds", "KRW"))
	require.Len(t, env.Sim().Charges(), 1, "no second charge")
	env.RequireBalanced()
}

// Reconciliation finds a dashboard refund the books lack; support applies it (audited), and the next
// run finds the two sides agree.
func TestReconciliationRefundFindingCanBeApplied(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	_, _, inv, order := paidInvoice(t, env, plan)
	dashboardCancel(t, env, order, 2500, "dash-1")
	now := env.Now()

	run, err := env.App.Reconcile.Run(ctx, "sim", now.Add(-24*time.Hour), now.Add(24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, 1, run.NewFindings)
	res := env.Do("GET", "/v1/support/reconciliation?status=open", testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	f := res.JSON(t)["data"].([]any)[0].(map[string]any)
	require.Equal(t, "amount_mismatch", f["kind"])
	require.Equal(t, []any{"apply_refund", "dismiss"}, f["allowed_actions"])

	res = env.Do("POST", "/v1/support/reconciliation/findings/"+f["id"].(string)+"/resolve", testenv.SupportToken,
		map[string]any{"action": "apply_refund", "reason": "ticket 7: refunded by phone"})
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "refund_applied", res.JSON(t)["resolution"])
	cns := creditNotes(t, env, inv)
	require.Len(t, cns, 1)
	require.Equal(t, "2500", cns[0]["amount"])
	require.Equal(t, "gateway", cns[0]["origin"])
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM audit_log WHERE action = 'reconciliation.apply_refund'`))

	again, err := env.App.Reconcile.Run(ctx, "sim", now.Add(-24*time.Hour), now.Add(24*time.Hour))
	require.NoError(t, err)
	require.Zero(t, again.NewFindings)
	require.Equal(t, 1, again.Matched, "the books now hold what the gateway holds")
	env.RequireBalanced()
}
