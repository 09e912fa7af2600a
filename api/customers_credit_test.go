package api_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

func creditBalance(t *testing.T, env *testenv.Env, cus string) []any {
	t.Helper()
	res := env.Do("GET", "/v1/customers/"+cus, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status)
	return res.JSON(t)["credit_balance"].([]any)
}

// Support grants credit (audited, with a reason); the next invoice spends it before the card is charged,
// and an invoice it covers entirely is paid with no charge at all.
func TestSupportCreditIsSpentBeforeTheCard(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := taxedPlan(t, env, "9900", "KRW", "txr_kr_vat")
	cus := env.Customer("ok")
	grant := map[string]any{"amount": "5000", "currency": "KRW", "reason": "ticket 4411: outage credit"}

	require.Equal(t, 403, env.Do("POST", "/v1/customers/"+cus+"/credit", testenv.ServiceToken, grant).Status)
	res := env.Do("POST", "/v1/customers/"+cus+"/credit", testenv.SupportToken, map[string]any{"amount": "5000", "currency": "KRW", "reason": " "})
	require.Equal(t, 422, res.Status, string(res.Body))
	res = env.Do("POST", "/v1/customers/"+cus+"/credit", testenv.SupportToken, map[string]any{"amount": "50.5", "currency": "KRW", "reason": "x"})
	require.Equal(t, 422, res.Status, string(res.Body))
	require.Equal(t, 404, env.Do("POST", "/v1/customers/cus_nope/credit", testenv.SupportToken, grant).Status)

	res = env.Do("POST", "/v1/customers/"+cus+"/credit", testenv.SupportToken, grant)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, map[string]any{"amount": "5000", "currency": "KRW"}, res.JSON(t)["balance"])
	require.Equal(t, []any{map[string]any{"amount": "5000", "currency": "KRW"}}, creditBalance(t, env, cus))

	res = env.Do("POST", "/v1/customers/"+cus+"/credit", testenv.SupportToken, map[string]any{"amount": "-6000", "currency": "KRW", "reason": "typo"})
	require.Equal(t, 422, res.Status, string(res.Body))
	require.Equal(t, "insufficient_credit", res.JSON(t)["code"])

	res = env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	inv := invoicesOf(t, env, res.JSON(t)["id"].(string))[0]
	require.Equal(t, []any{"paid", "9900", "5000", "9900", "0"}, []any{inv["status"], inv["total"], inv["credit_applied"], inv["amount_paid"], inv["amount_due"]})
	require.Equal(t, map[string]int{"4900": 1}, chargedAmounts(env), "the card pays only what the credit did not")
	require.Empty(t, creditBalance(t, env, cus))

	// Credit larger than the invoice: paid at once, no charge, the rest stays.
	cus2 := env.Customer("ok")
	res = env.Do("POST", "/v1/customers/"+cus2+"/credit", testenv.SupportToken, map[string]any{"amount": "20000", "currency": "KRW", "reason": "goodwill"})
	require.Equal(t, 200, res.Status, string(res.Body))
	res = env.Subscribe(cus2, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	require.Equal(t, "active", res.JSON(t)["status"])
	inv = invoicesOf(t, env, res.JSON(t)["id"].(string))[0]
	require.Equal(t, []any{"paid", "9900", "0"}, []any{inv["status"], inv["credit_applied"], inv["amount_due"]})
	require.Empty(t, inv["attempts"])
	require.Equal(t, map[string]int{"4900": 1}, chargedAmounts(env), "no charge for an invoice credit covered")
	require.Equal(t, []any{map[string]any{"amount": "10100", "currency": "KRW"}}, creditBalance(t, env, cus2))

	// Removing credit is audited too, and cannot go below zero.
	res = env.Do("POST", "/v1/customers/"+cus2+"/credit", testenv.SupportToken, map[string]any{"amount": "-10100", "currency": "KRW", "reason": "granted twice"})
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Empty(t, creditBalance(t, env, cus2))
	res = env.Do("GET", "/v1/support/audit?target_id="+cus2, testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status)
	var reasons []any
	for _, r := range res.JSON(t)["data"].([]any) {
		r := r.(map[string]any)
		require.Equal(t, "adjust-credit", r["action"])
		reasons = append(reasons, r["reason"])
	}
	require.ElementsMatch(t, []any{"goodwill", "granted twice"}, reasons)
	require.Equal(t, "14900", accountBalance(t, env, "credit_granted", "KRW"), "support gave 25,000 and took 10,100 back; 14,900 were spent")
	// What each customer owes is their open invoices' amount due; the credit they hold is apart from it.
	for _, c := range []string{cus, cus2} {
		require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM invoices WHERE customer_id = $1 AND status = 'open'`, c))
		require.Equal(t, 0, env.QueryInt(`SELECT coalesce(sum(amount), 0)::int FROM ledger_entries WHERE account = 'receivable:' || $1::text`, c))
	}
	env.RequireBalanced()
}
