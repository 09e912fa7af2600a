package api_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

func createCoupon(t *testing.T, env *testenv.Env, body map[string]any) map[string]any {
	t.Helper()
	res := env.Do("POST", "/v1/coupons", testenv.AdminToken, body)
	require.Equal(t, 201, res.Status, string(res.Body))
	return res.JSON(t)
}

func subscribeWith(t *testing.T, env *testenv.Env, cus, plan, coupon string) (int, map[string]any) {
	t.Helper()
	res := env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, map[string]any{"customer_id": cus, "plan_id": plan, "coupon": coupon})
	return res.Status, res.JSON(t)
}

// fields picks invoice fields in order, for one-line comparisons.
func fields(inv map[string]any, names ...string) []any {
	out := make([]any, len(names))
	for i, n := range names {
		out[i] = inv[n]
	}
	return out
}

func TestCouponsAreAdminWrittenAndValidated(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	body := map[string]any{"code": "SPRING20", "percent_off": "20", "duration": "forever"}
	require.Equal(t, 403, env.Do("POST", "/v1/coupons", testenv.ServiceToken, body).Status)
	require.Equal(t, 403, env.Do("POST", "/v1/coupons", testenv.SupportToken, body).Status)
	for _, bad := range []map[string]any{
		{"code": "A", "percent_off": "0", "duration": "forever"},
		{"code": "A", "percent_off": "20", "amount_off": "100", "currency": "KRW", "duration": "forever"},
		{"code": "A", "amount_off": "10.5", "currency": "KRW", "duration": "once"},
		{"code": "A", "percent_off": "20", "duration": "repeating"},
		{"code": "A", "percent_off": "20", "duration": "sometimes"},
		{"code": "A", "percent_off": "20", "duration": "once", "plan_ids": []string{"plan_nope"}},
		{"code": "bad code", "percent_off": "20", "duration": "once"},
	} {
		res := env.Do("POST", "/v1/coupons", testenv.AdminToken, bad)
		require.Equal(t, 422, res.Status, "%v: %s", bad, res.Body)
	}
	c := createCoupon(t, env, body)
	require.Equal(t, 409, env.Do("POST", "/v1/coupons", testenv.AdminToken, body).Status)
	res := env.Do("GET", "/v1/coupons/SPRING20", testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status)
	require.Equal(t, c["id"], res.JSON(t)["id"])
	require.Equal(t, true, res.JSON(t)["valid"])

	require.Equal(t, 403, env.Do("POST", "/v1/coupons/"+c["id"].(string)+"/archive", testenv.ServiceToken, nil).Status)
	res = env.Do("POST", "/v1/coupons/"+c["id"].(string)+"/archive", testenv.AdminToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, false, res.JSON(t)["valid"])
	status, out := subscribeWith(t, env, env.Customer("ok"), env.CreatePlan("9900", "KRW", "month", 1), "SPRING20")
	require.Equal(t, 422, status)
	require.Equal(t, "coupon_archived", out["code"])
	require.Empty(t, env.Sim().Charges(), "a refused coupon creates and charges nothing")
}

// 20 % off forever on a VAT-inclusive plan: the discount comes off first and VAT is round(what is left / 11);
// the ledger records the money off (net of the VAT inside it) in discounts. Every renewal is discounted.
func TestPercentCouponForeverWithVAT(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := taxedPlan(t, env, "11000", "KRW", "txr_kr_vat")
	c := createCoupon(t, env, map[string]any{"code": "VIP20", "percent_off": "20", "duration": "forever"})
	status, sub := subscribeWith(t, env, env.Customer("ok"), plan, "VIP20")
	require.Equal(t, 201, status, "%v", sub)
	require.Equal(t, "VIP20", sub["discount"].(map[string]any)["code"])
	subID := sub["id"].(string)
	inv := invoicesOf(t, env, subID)[0]
	require.Equal(t, []any{"11000", "2200", "8000", "800", "8800", "paid"}, fields(inv, "subtotal", "total_discount", "total_excluding_tax", "tax", "total", "status"))
	require.Equal(t, []any{map[string]any{"coupon_id": c["id"], "amount": "2200"}}, inv["discounts"])
	line := inv["lines"].([]any)[0].(map[string]any)
	require.Equal(t, []any{"11000", "2200", c["id"], "8000", "800", "8800"}, fields(line, "amount", "discount", "coupon_id", "supply_value", "tax", "total"))
	require.Equal(t, "2000", accountBalance(t, env, "discounts", "KRW"))
	require.Equal(t, "-10000", accountBalance(t, env, "revenue", "KRW"))
	require.Equal(t, "-800", accountBalance(t, env, "tax_owed", "KRW"))

	env.AdvanceToRenewal(subID, time.Second)
	invs := invoicesOf(t, env, subID)
	require.Len(t, invs, 2)
	require.Equal(t, []any{"renewal", "2200", "8800", "paid"}, fields(invs[1], "kind", "total_discount", "total", "status"))
	require.Equal(t, map[string]int{"8800": 2}, chargedAmounts(env))
	env.RequireBalanced()
}

// once: the first period only; repeating 2: two periods; a fixed amount in the plan's currency.
func TestCouponDurations(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("10000", "KRW", "month", 1)
	createCoupon(t, env, map[string]any{"code": "FIRST", "amount_off": "3000", "currency": "KRW", "duration": "once"})
	createCoupon(t, env, map[string]any{"code": "TWO", "percent_off": "50", "duration": "repeating", "duration_in_intervals": 2})
	_, once := subscribeWith(t, env, env.Customer("ok"), plan, "FIRST")
	_, two := subscribeWith(t, env, env.Customer("ok"), plan, "TWO")
	for i := 0; i < 3; i++ {
		env.AdvanceToRenewal(once["id"].(string), time.Second)
	}
	totals := func(subID string) []any {
		var out []any
		for _, inv := range invoicesOf(t, env, subID) {
			out = append(out, inv["total"])
		}
		return out
	}
	require.Equal(t, []any{"7000", "10000", "10000", "10000"}, totals(once["id"].(string)))
	require.Equal(t, []any{"5000", "5000", "10000", "10000"}, totals(two["id"].(string)))
	require.Nil(t, env.Subscription(two["id"].(string))["discount"], "an ended coupon is no longer the subscription's")
	env.RequireBalanced()
}

// Redemption limits hold under concurrent subscribes; expiry and plan restrictions are refused with 422.
func TestCouponLimitsExpiryAndPlans(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("5000", "KRW", "month", 1)
	other := env.CreatePlan("7000", "KRW", "month", 1)
	createCoupon(t, env, map[string]any{"code": "THREE", "percent_off": "10", "duration": "once", "max_redemptions": 3})
	customers := make([]string, 8)
	for i := range customers {
		customers[i] = env.Customer("ok")
	}
	var wg sync.WaitGroup
	statuses := make([]int, len(customers))
	codes := make([]any, len(customers))
	for i, cus := range customers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, map[string]any{"customer_id": cus, "plan_id": plan, "coupon": "THREE"})
			statuses[i] = res.Status
			if res.Status == 422 {
				codes[i] = res.JSON(t)["code"]
			}
		}()
	}
	wg.Wait()
	won := 0
	for i, st := range statuses {
		if st == 201 {
			won++
		} else {
			require.Equal(t, 422, st)
			require.Equal(t, "coupon_exhausted", codes[i])
		}
	}
	require.Equal(t, 3, won, "exactly max_redemptions subscriptions got the coupon")
	res := env.Do("GET", "/v1/coupons/THREE", testenv.ServiceToken, nil)
	require.Equal(t, float64(3), res.JSON(t)["times_redeemed"])
	require.Equal(t, 3, env.QueryInt(`SELECT count(*) FROM subscriptions`))

	createCoupon(t, env, map[string]any{"code": "ONLYOTHER", "percent_off": "10", "duration": "once", "plan_ids": []string{other}})
	status, out := subscribeWith(t, env, env.Customer("ok"), plan, "ONLYOTHER")
	require.Equal(t, 422, status)
	require.Equal(t, "coupon_not_applicable", out["code"])
	createCoupon(t, env, map[string]any{"code": "USD5", "amount_off": "5.00", "currency": "USD", "duration": "once"})
	status, out = subscribeWith(t, env, env.Customer("ok"), plan, "USD5")
	require.Equal(t, 422, status)
	require.Equal(t, "coupon_not_applicable", out["code"])

	createCoupon(t, env, map[string]any{"code": "SOON", "percent_off": "10", "duration": "once", "redeem_by": env.Now().Add(time.Hour)})
	env.Advance("2h")
	status, out = subscribeWith(t, env, env.Customer("ok"), plan, "SOON")
	require.Equal(t, 422, status)
	require.Equal(t, "coupon_expired", out["code"])
	status, out = subscribeWith(t, env, env.Customer("ok"), plan, "NOSUCH")
	require.Equal(t, 422, status)
	require.Equal(t, "coupon_not_found", out["code"])
}

// A plan change in a discounted period: unused time is credited at the discounted price that was paid and
// the rest of the period costs the discounted new price, so the change costs exactly 80 % of the
// undiscounted one. A coupon support adds mid-period starts with the next period and leaves this one's
// prorations alone.
func TestDiscountedProrationIsExactAndSupportAppliesCoupons(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	basic := env.CreatePlan("10000", "KRW", "month", 1)
	pro := env.CreatePlan("30000", "KRW", "month", 1)
	createCoupon(t, env, map[string]any{"code": "OFF20", "percent_off": "20", "duration": "forever"})
	status, sub := subscribeWith(t, env, env.Customer("ok"), basic, "OFF20")
	require.Equal(t, 201, status, "%v", sub)
	subID := sub["id"].(string)
	start, err := time.Parse(time.RFC3339, sub["current_period_start"].(string))
	require.NoError(t, err)
	end := env.RenewalAt(subID)
	env.AdvanceTo(start.Add(end.Sub(start) / 2))

	out := changePlan(t, env, subID, map[string]any{"plan_id": pro, "timing": "immediate"})
	require.NotNil(t, out.Invoice)
	inv := invoicesOf(t, env, subID)[1]
	require.Equal(t, []any{"proration", "10000", "2000", "8000", "paid"}, fields(inv, "kind", "subtotal", "total_discount", "total", "status"))
	var lineTotals []any
	for _, l := range inv["lines"].([]any) {
		lineTotals = append(lineTotals, l.(map[string]any)["total"])
	}
	require.Equal(t, []any{"-4000", "12000"}, lineTotals)

	// Support puts a 50 % coupon on: audited, from the next period on.
	createCoupon(t, env, map[string]any{"code": "HALF", "percent_off": "50", "duration": "once"})
	res := env.Do("POST", "/v1/subscriptions/"+subID+"/discount", testenv.SupportToken, map[string]any{"coupon": "HALF"})
	require.Equal(t, 422, res.Status, "support says why")
	res = env.Do("POST", "/v1/subscriptions/"+subID+"/discount", testenv.SupportToken, map[string]any{"coupon": "HALF", "reason": "ticket 77"},
		"If-Match: \"1\"")
	require.Equal(t, 412, res.Status, string(res.Body))
	res = env.Do("POST", "/v1/subscriptions/"+subID+"/discount", testenv.SupportToken, map[string]any{"coupon": "HALF", "reason": "ticket 77"})
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "HALF", res.JSON(t)["discount"].(map[string]any)["code"])
	require.Equal(t, etagOf(int(env.Subscription(subID)["version"].(float64))), res.Header.Get("ETag"))
	require.Greater(t, res.JSON(t)["version"].(float64), float64(out.Subscription.Version), "a new discount is a new version")
	res = env.Do("GET", "/v1/support/audit?target_id="+subID, testenv.SupportToken, nil)
	require.Equal(t, "apply-discount", res.JSON(t)["data"].([]any)[0].(map[string]any)["action"])

	// Back to basic in this period: still priced by OFF20, which priced the period.
	changePlan(t, env, subID, map[string]any{"plan_id": basic, "timing": "immediate"})
	invs := invoicesOf(t, env, subID)
	require.Len(t, invs, 3)
	require.ElementsMatch(t, []any{"8000", "-8000"}, []any{invs[1]["total"], invs[2]["total"]},
		"the credit is the 80 % price of the rest of the period, both ways")
	env.AdvanceToRenewal(subID, time.Second)
	invs = invoicesOf(t, env, subID)
	require.Equal(t, []any{"renewal", "5000", "5000"}, fields(invs[3], "kind", "total_discount", "total"))
	require.Equal(t, "0", invs[3]["amount_due"], "the credit from the downgrade paid it")
	env.RequireBalanced()
}
