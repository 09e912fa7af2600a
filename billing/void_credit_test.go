package billing_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// Found by the money property test (billing/moneyprop): voiding an open invoice a credit note had lowered
// reversed its whole finalization, leaving the customer's receivable negative by the credit note (the
// books said we owed them money) and the credit note's contra-revenue standing. Voiding undoes the
// invoice and with it the credit notes on it: receivable and credit_notes come back to zero.
func TestVoidingAnInvoiceACreditNoteLoweredLeavesNoReceivable(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer(pgsim.BehaviorInsufficient)
	res := env.Subscribe(cus, plan)
	require.Equal(t, 402, res.Status, string(res.Body))
	inv := res.JSON(t)["invoice_id"].(string)
	res = refund(env, testenv.SupportToken, inv, map[string]any{"amount": "3", "reason": "goodwill"})
	require.Equal(t, 201, res.Status, string(res.Body))

	res = env.Do("POST", "/v1/support/invoices/"+inv+"/void", testenv.SupportToken, map[string]any{"reason": "customer left"})
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "void", res.JSON(t)["status"])
	require.Equal(t, "0", accountBalance(t, env, "receivable:"+cus, "KRW"))
	require.Equal(t, "0", accountBalance(t, env, "credit_notes", "KRW"))
	require.Equal(t, "0", accountBalance(t, env, "revenue", "KRW"))
	env.RequireBalanced()
}

// Found by the money property test: a first invoice partly paid by the customer's credit and declined for
// the rest could not be voided when the subscription's incomplete window ended (something was paid), so
// the expiry failed every time it ran and the subscription stayed incomplete. The credit goes back to the
// customer's balance and the invoice is voided.
func TestIncompleteExpiryGivesAppliedCreditBack(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer(pgsim.BehaviorInsufficient)
	res := env.Do("POST", "/v1/customers/"+cus+"/credit", testenv.SupportToken, map[string]any{"amount": "3000", "currency": "KRW", "reason": "goodwill"})
	require.Equal(t, 200, res.Status, string(res.Body))
	res = env.Subscribe(cus, plan)
	require.Equal(t, 402, res.Status, string(res.Body))
	inv, sub := res.JSON(t)["invoice_id"].(string), res.JSON(t)["subscription_id"].(string)
	got := getInv(t, env, inv)
	require.Equal(t, []any{"open", "3000", "6900"}, []any{got["status"], got["credit_applied"], got["amount_due"]})

	var expires time.Time
	require.NoError(t, env.App.Pool.QueryRow(context.Background(), `SELECT incomplete_expires_at FROM subscriptions WHERE id = $1`, sub).Scan(&expires))
	env.AdvanceTo(expires.Add(time.Second))
	require.Equal(t, "incomplete_expired", env.Subscription(sub)["status"])
	got = getInv(t, env, inv)
	require.Equal(t, []any{"void", "0"}, []any{got["status"], got["amount_paid"]})
	require.Equal(t, "0", accountBalance(t, env, "receivable:"+cus, "KRW"))
	require.Equal(t, "-3000", accountBalance(t, env, "credit:"+cus, "KRW"), "the credit is the customer's again")
	res = env.Do("GET", "/v1/customers/"+cus, testenv.ServiceToken, nil)
	require.Equal(t, []any{map[string]any{"amount": "3000", "currency": "KRW"}}, res.JSON(t)["credit_balance"])
	env.RequireBalanced()
}
