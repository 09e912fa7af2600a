package api_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

// accountBalance reads one ledger account's balance from the trial balance ("" when it has none).
func accountBalance(t *testing.T, env *testenv.Env, account, currency string) string {
	t.Helper()
	res := env.Do("GET", "/v1/ledger/trial-balance", testenv.AdminToken, nil)
	require.Equal(t, 200, res.Status)
	for _, a := range res.JSON(t)["accounts"].([]any) {
		a := a.(map[string]any)
		if a["account"] == account && a["currency"] == currency {
			return a["balance"].(string)
		}
	}
	return ""
}

func taxedPlan(t *testing.T, env *testenv.Env, amount, currency, taxRateID string) string {
	t.Helper()
	body := map[string]any{"code": "taxed-" + amount + currency + taxRateID, "name": "Taxed " + amount, "amount": amount,
		"currency": currency, "interval": "month", "interval_count": 1}
	if taxRateID != "" {
		body["tax_rate_id"] = taxRateID
	}
	res := env.Do("POST", "/v1/plans", testenv.AdminToken, body)
	require.Equal(t, 201, res.Status, string(res.Body))
	return res.JSON(t)["id"].(string)
}

func TestTaxRatesAreAdminWrittenAndKoreanVATIsThere(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	res := env.Do("POST", "/v1/tax-rates", testenv.ServiceToken, map[string]any{"name": "x", "percentage": "10", "inclusive": false})
	require.Equal(t, 403, res.Status)
	res = env.Do("POST", "/v1/tax-rates", testenv.AdminToken, map[string]any{"name": "x", "percentage": "100.5", "inclusive": false})
	require.Equal(t, 422, res.Status, string(res.Body))
	res = env.Do("POST", "/v1/tax-rates", testenv.AdminToken, map[string]any{"name": "NY sales tax", "percentage": "8.875", "inclusive": false, "country": "US"})
	require.Equal(t, 201, res.Status, string(res.Body))
	require.Equal(t, "8.875", res.JSON(t)["percentage"])

	res = env.Do("GET", "/v1/tax-rates/txr_kr_vat", testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status)
	vat := res.JSON(t)
	require.Equal(t, "10", vat["percentage"])
	require.Equal(t, true, vat["inclusive"])
	require.Equal(t, "KR", vat["country"])
	res = env.Do("GET", "/v1/tax-rates", testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status)
	require.Len(t, res.JSON(t)["data"].([]any), 2)

	res = env.Do("POST", "/v1/plans", testenv.AdminToken, map[string]any{"code": "bad-rate", "name": "x", "amount": "100",
		"currency": "KRW", "interval": "month", "tax_rate_id": "txr_nope"})
	require.Equal(t, 422, res.Status, string(res.Body))
}

// A KRW plan priced VAT-inclusive: the invoice shows supply value 9,000 and VAT 900 (round(9,900 / 11)),
// the card is charged 9,900, and the VAT sits in tax_owed. Voiding an unpaid one gives the VAT back.
func TestKoreanVATOnAnInvoiceAndInTheLedger(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := taxedPlan(t, env, "9900", "KRW", "txr_kr_vat")
	cus := env.Customer("ok")
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub := res.JSON(t)["id"].(string)

	inv := invoicesOf(t, env, sub)[0]
	require.Equal(t, "paid", inv["status"])
	require.Equal(t, []any{"9900", "0", "9000", "900", "9900", "9900"},
		[]any{inv["subtotal"], inv["total_discount"], inv["total_excluding_tax"], inv["tax"], inv["total"], inv["amount_paid"]})
	line := inv["lines"].([]any)[0].(map[string]any)
	require.Equal(t, []any{"9900", "0", "9000", "900", "9900"}, []any{line["amount"], line["discount"], line["supply_value"], line["tax"], line["total"]})
	require.Equal(t, map[string]any{"id": "txr_kr_vat", "percentage": "10", "inclusive": true}, line["tax_rate"])
	require.Equal(t, []any{map[string]any{"tax_rate_id": "txr_kr_vat", "percentage": "10", "inclusive": true, "taxable_amount": "9900", "amount": "900"}}, inv["taxes"])
	require.Equal(t, "-900", accountBalance(t, env, "tax_owed", "KRW"))
	require.Equal(t, "-9000", accountBalance(t, env, "revenue", "KRW"))
	require.Equal(t, map[string]int{"9900": 1}, chargedAmounts(env))

	// A declined first charge leaves the invoice open; voiding it reverses revenue and VAT alike.
	bad := env.Customer("insufficient")
	res = env.Subscribe(bad, plan)
	require.Equal(t, 402, res.Status, string(res.Body))
	require.Equal(t, "-1800", accountBalance(t, env, "tax_owed", "KRW"))
	invID := res.JSON(t)["invoice_id"].(string)
	res = env.Do("POST", "/v1/support/invoices/"+invID+"/void", testenv.SupportToken, map[string]any{"reason": "customer left"})
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "-900", accountBalance(t, env, "tax_owed", "KRW"))
	require.Equal(t, "-9000", accountBalance(t, env, "revenue", "KRW"))
	env.RequireBalanced()
}

// An exclusive rate on the customer wins over the plan's inclusive one: tax is added on top and charged.
func TestCustomerTaxRateAddsExclusiveTax(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	res := env.Do("POST", "/v1/tax-rates", testenv.AdminToken, map[string]any{"name": "Sales tax", "percentage": "10", "inclusive": false})
	require.Equal(t, 201, res.Status, string(res.Body))
	rate := res.JSON(t)["id"].(string)
	plan := taxedPlan(t, env, "19.99", "USD", "txr_kr_vat")
	cus := env.Customer("ok")
	res = env.Do("POST", "/v1/customers/"+cus+"/tax-rate", testenv.ServiceToken, map[string]any{"tax_rate_id": rate})
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, rate, res.JSON(t)["tax_rate_id"])
	res = env.Do("POST", "/v1/customers/"+cus+"/tax-rate", testenv.ServiceToken, map[string]any{"tax_rate_id": "txr_nope"})
	require.Equal(t, 422, res.Status, string(res.Body))

	res = env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	inv := invoicesOf(t, env, res.JSON(t)["id"].(string))[0]
	require.Equal(t, []any{"19.99", "19.99", "2.00", "21.99", "paid"}, []any{inv["subtotal"], inv["total_excluding_tax"], inv["tax"], inv["total"], inv["status"]})
	require.Equal(t, map[string]int{"21.99": 1}, chargedAmounts(env))
	require.Equal(t, "-2.00", accountBalance(t, env, "tax_owed", "USD"))
	env.RequireBalanced()
}

// invoicesOf lists a subscription's invoices, oldest first.
func invoicesOf(t *testing.T, env *testenv.Env, subID string) []map[string]any {
	t.Helper()
	res := env.Do("GET", "/v1/invoices?limit=500&subscription_id="+subID, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status)
	var out []map[string]any
	for _, d := range res.JSON(t)["data"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// chargedAmounts counts the simulator's committed charges by amount.
func chargedAmounts(env *testenv.Env) map[string]int {
	out := map[string]int{}
	for _, c := range env.Sim().Charges() {
		if c.Status == "DONE" {
			out[c.Amount.String()]++
		}
	}
	return out
}

// The gateway is told what is tax-free (Toss taxFreeAmount) and the VAT it reports back is checked: 10 %
// inclusive VAT agrees with Toss's round((amount - taxFreeAmount) / 11); a 5 % rate cannot, and the
// payment says so on the timeline (payment.tax_mismatch) without being refused.
func TestGatewayTaxFieldsAndTheVATCheck(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	res := env.Do("POST", "/v1/tax-rates", testenv.AdminToken, map[string]any{"name": "Reduced", "percentage": "5", "inclusive": true, "country": "KR"})
	require.Equal(t, 201, res.Status, string(res.Body))
	reduced := res.JSON(t)["id"].(string)
	vatSub := env.Subscribe(env.Customer("ok"), taxedPlan(t, env, "9900", "KRW", "txr_kr_vat")).JSON(t)["id"].(string)
	freeSub := env.Subscribe(env.Customer("ok"), taxedPlan(t, env, "7000", "KRW", "")).JSON(t)["id"].(string)
	reducedSub := env.Subscribe(env.Customer("ok"), taxedPlan(t, env, "10500", "KRW", reduced)).JSON(t)["id"].(string)

	taxFree := map[string]string{}
	for _, c := range env.Sim().Charges() {
		taxFree[c.Amount.String()] = c.TaxFreeAmount.String()
	}
	require.Equal(t, map[string]string{"9900": "0", "7000": "7000", "10500": "0"}, taxFree)

	mismatches := func(subID string) []any {
		res := env.Do("GET", "/v1/subscriptions/"+subID+"/timeline?limit=500", testenv.ServiceToken, nil)
		require.Equal(t, 200, res.Status)
		var out []any
		for _, e := range res.JSON(t)["data"].([]any) {
			if e := e.(map[string]any); e["type"] == "payment.tax_mismatch" {
				out = append(out, e["data"])
			}
		}
		return out
	}
	require.Empty(t, mismatches(vatSub))
	require.Empty(t, mismatches(freeSub))
	got := mismatches(reducedSub)
	require.Len(t, got, 1)
	data := got[0].(map[string]any)
	require.Equal(t, []any{"500", "955"}, []any{data["expected_vat"], data["reported_vat"]}, "5 %% of 10,500 inclusive is 500; Toss's 1/11 is 955")
	require.Equal(t, "active", env.Subscription(reducedSub)["status"], "the money moved: the payment stands")
}
