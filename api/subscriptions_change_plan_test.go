package api_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

type invoiceLine struct {
	Description string `json:"description"`
	PlanID      string `json:"plan_id"`
	Amount      string `json:"amount"`
	Quantity    int    `json:"quantity"`
	Proration   bool   `json:"proration"`
}

type invoiceAttempt struct {
	Status  string `json:"status"`
	Amount  string `json:"amount"`
	OrderID string `json:"order_id"`
}

type invoiceBody struct {
	ID          string           `json:"id"`
	Kind        string           `json:"kind"`
	Status      string           `json:"status"`
	Currency    string           `json:"currency"`
	Total       string           `json:"total"`
	AmountDue   string           `json:"amount_due"`
	AmountPaid  string           `json:"amount_paid"`
	PeriodStart time.Time        `json:"period_start"`
	PeriodEnd   time.Time        `json:"period_end"`
	Lines       []invoiceLine    `json:"lines"`
	Attempts    []invoiceAttempt `json:"attempts"`
}

type subscriptionBody struct {
	ID                 string     `json:"id"`
	PlanID             string     `json:"plan_id"`
	Quantity           int        `json:"quantity"`
	Status             string     `json:"status"`
	Entitled           bool       `json:"entitled"`
	CurrentPeriodStart time.Time  `json:"current_period_start"`
	CurrentPeriodEnd   time.Time  `json:"current_period_end"`
	NextRenewalAt      *time.Time `json:"next_renewal_at"`
	CancelAtPeriodEnd  bool       `json:"cancel_at_period_end"`
	CanceledAt         *time.Time `json:"canceled_at"`
	PendingChange      *struct {
		PlanID      string    `json:"plan_id"`
		Quantity    int       `json:"quantity"`
		EffectiveAt time.Time `json:"effective_at"`
	} `json:"pending_change"`
	Dunning struct {
		GraceEndsAt *time.Time `json:"grace_ends_at"`
	} `json:"dunning"`
	Version int `json:"version"`
}

type planChangedBody struct {
	Subscription subscriptionBody `json:"subscription"`
	Invoice      *invoiceBody     `json:"invoice"`
	Credit       *struct {
		Amount    string `json:"amount"`
		Currency  string `json:"currency"`
		InvoiceID string `json:"invoice_id"`
	} `json:"credit"`
}

// subscribed starts an active subscription of plan for a customer whose card behaves as behavior.
func subscribed(t *testing.T, env *testenv.Env, plan, behavior string) (cus string, sub subscriptionBody) {
	t.Helper()
	cus = env.Customer(behavior)
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	res.Decode(t, &sub)
	require.Equal(t, "active", sub.Status)
	return cus, sub
}

func readSubscription(t *testing.T, env *testenv.Env, id string) subscriptionBody {
	t.Helper()
	var s subscriptionBody
	res := env.Do("GET", "/v1/subscriptions/"+id, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	res.Decode(t, &s)
	return s
}

func subscriptionInvoices(t *testing.T, env *testenv.Env, subID string) []invoiceBody {
	t.Helper()
	res := env.Do("GET", "/v1/invoices?subscription_id="+subID, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	var list struct {
		Data []invoiceBody `json:"data"`
	}
	res.Decode(t, &list)
	return list.Data
}

// advanceTo moves the test clock to exactly at.
func advanceTo(t *testing.T, env *testenv.Env, at time.Time) {
	t.Helper()
	res := env.Do("POST", "/v1/test-clock/advance", testenv.AdminToken, map[string]any{"to": at.UTC().Format(time.RFC3339)})
	require.Equal(t, 200, res.Status, string(res.Body))
}

func midPeriod(s subscriptionBody) time.Time {
	return s.CurrentPeriodStart.Add(s.CurrentPeriodEnd.Sub(s.CurrentPeriodStart) / 2)
}

func changePlan(t *testing.T, env *testenv.Env, subID string, body map[string]any) planChangedBody {
	t.Helper()
	res := env.Do("POST", "/v1/subscriptions/"+subID+"/change-plan", testenv.ServiceToken, body)
	require.Equal(t, 200, res.Status, string(res.Body))
	var out planChangedBody
	res.Decode(t, &out)
	require.Equal(t, etagOf(out.Subscription.Version), res.Header.Get("ETag"))
	return out
}

func etagOf(v int) string { return `"` + strconv.Itoa(v) + `"` }

// gatewayAmount is what the gateway committed for orderID.
func gatewayAmount(t *testing.T, env *testenv.Env, orderID string) string {
	t.Helper()
	c, ok := env.Sim().Charge(orderID)
	require.True(t, ok, "no charge at the gateway for %s", orderID)
	return c.Amount.String()
}

func customerCredit(t *testing.T, env *testenv.Env, cus string) []any {
	t.Helper()
	res := env.Do("GET", "/v1/customers/"+cus+"/balance", testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	return res.JSON(t)["credit"].([]any)
}

// KRW 10000 -> 30000 monthly at exactly half the period: credit -5000 for the unused half of the old
// price, debit +15000 for the remaining half of the new one, +10000 charged now.
func TestChangePlanUpgradeMidPeriodChargesTheProrationNow(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	basic := env.CreatePlan("10000", "KRW", "month", 1)
	pro := env.CreatePlan("30000", "KRW", "month", 1)
	_, sub := subscribed(t, env, basic, "ok")
	mid := midPeriod(sub)
	advanceTo(t, env, mid)

	out := changePlan(t, env, sub.ID, map[string]any{"plan_id": pro})
	require.Equal(t, pro, out.Subscription.PlanID)
	require.Equal(t, "active", out.Subscription.Status)
	require.Greater(t, out.Subscription.Version, sub.Version)
	require.True(t, out.Subscription.CurrentPeriodEnd.Equal(sub.CurrentPeriodEnd), "the period does not move")
	require.Nil(t, out.Credit)
	require.NotNil(t, out.Invoice)
	inv := *out.Invoice
	require.Equal(t, "proration", inv.Kind)
	require.Equal(t, "paid", inv.Status)
	require.Equal(t, "10000", inv.Total)
	require.Equal(t, "10000", inv.AmountPaid)
	require.Equal(t, "0", inv.AmountDue)
	require.True(t, inv.PeriodStart.Equal(mid) && inv.PeriodEnd.Equal(sub.CurrentPeriodEnd), "%s – %s", inv.PeriodStart, inv.PeriodEnd)
	require.Len(t, inv.Lines, 2)
	require.Equal(t, invoiceLine{Description: inv.Lines[0].Description, PlanID: basic, Amount: "-5000", Quantity: 1, Proration: true}, inv.Lines[0])
	require.Equal(t, invoiceLine{Description: inv.Lines[1].Description, PlanID: pro, Amount: "15000", Quantity: 1, Proration: true}, inv.Lines[1])
	require.Len(t, inv.Attempts, 1)
	require.Equal(t, "succeeded", inv.Attempts[0].Status)
	require.Equal(t, "10000", gatewayAmount(t, env, inv.Attempts[0].OrderID))
	env.RequireBalanced()

	// The next renewal charges the new plan's full price.
	advanceTo(t, env, sub.CurrentPeriodEnd)
	invs := subscriptionInvoices(t, env, sub.ID)
	require.Len(t, invs, 3)
	require.Equal(t, "renewal", invs[2].Kind)
	require.Equal(t, "30000", invs[2].Total)
	require.Equal(t, "paid", invs[2].Status)
	env.RequireBalanced()
}

func TestChangePlanDowngradeWaitsForThePeriodEnd(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	pro := env.CreatePlan("30000", "KRW", "month", 1)
	basic := env.CreatePlan("10000", "KRW", "month", 1)
	_, sub := subscribed(t, env, pro, "ok")
	advanceTo(t, env, midPeriod(sub))

	out := changePlan(t, env, sub.ID, map[string]any{"plan_id": basic})
	require.Nil(t, out.Invoice, "nothing is charged now")
	require.Nil(t, out.Credit)
	require.Equal(t, pro, out.Subscription.PlanID, "still on the old plan until the period ends")
	require.NotNil(t, out.Subscription.PendingChange)
	require.Equal(t, basic, out.Subscription.PendingChange.PlanID)
	require.Equal(t, 1, out.Subscription.PendingChange.Quantity)
	require.True(t, out.Subscription.PendingChange.EffectiveAt.Equal(sub.CurrentPeriodEnd))
	require.Len(t, subscriptionInvoices(t, env, sub.ID), 1)

	// Asking for the plan in force withdraws the pending change; asking again for the downgrade restores it.
	out = changePlan(t, env, sub.ID, map[string]any{"plan_id": pro})
	require.Nil(t, out.Subscription.PendingChange)
	out = changePlan(t, env, sub.ID, map[string]any{"plan_id": basic, "quantity": 2, "timing": "period_end"})
	require.Equal(t, 2, out.Subscription.PendingChange.Quantity)

	advanceTo(t, env, sub.CurrentPeriodEnd)
	after := readSubscription(t, env, sub.ID)
	require.Equal(t, basic, after.PlanID)
	require.Equal(t, 2, after.Quantity)
	require.Nil(t, after.PendingChange)
	invs := subscriptionInvoices(t, env, sub.ID)
	require.Len(t, invs, 2)
	require.Equal(t, "renewal", invs[1].Kind)
	require.Equal(t, "20000", invs[1].Total)
	require.Equal(t, basic, invs[1].Lines[0].PlanID)
	require.Equal(t, "paid", invs[1].Status)
	env.RequireBalanced()
}

// KRW 30000 -> 20000 immediately at half: -15000 + 10000 = 5000 of credit, which the next renewal
// (20000) spends before charging the card 15000.
func TestImmediateDowngradeCreditIsSpentByTheNextInvoice(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	pro := env.CreatePlan("30000", "KRW", "month", 1)
	std := env.CreatePlan("20000", "KRW", "month", 1)
	cus, sub := subscribed(t, env, pro, "ok")
	advanceTo(t, env, midPeriod(sub))
	charges := len(env.Sim().Charges())

	out := changePlan(t, env, sub.ID, map[string]any{"plan_id": std, "timing": "immediate"})
	require.Nil(t, out.Invoice, "nothing is charged now")
	require.NotNil(t, out.Credit)
	require.Equal(t, "5000", out.Credit.Amount)
	require.Equal(t, "KRW", out.Credit.Currency)
	require.Equal(t, std, out.Subscription.PlanID)
	require.Len(t, env.Sim().Charges(), charges, "no charge for a downgrade")
	require.Equal(t, []any{map[string]any{"amount": "5000", "currency": "KRW"}}, customerCredit(t, env, cus))

	// The credit's invoice records the lines, and they sum to its (negative) total.
	res := env.Do("GET", "/v1/invoices/"+out.Credit.InvoiceID, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status)
	var note invoiceBody
	res.Decode(t, &note)
	require.Equal(t, "proration", note.Kind)
	require.Equal(t, "-5000", note.Total)
	require.Equal(t, "0", note.AmountDue)
	require.Equal(t, []string{"-15000", "10000"}, []string{note.Lines[0].Amount, note.Lines[1].Amount})
	env.RequireBalanced()

	advanceTo(t, env, sub.CurrentPeriodEnd)
	invs := subscriptionInvoices(t, env, sub.ID)
	renewal := invs[len(invs)-1]
	require.Equal(t, "renewal", renewal.Kind)
	require.Equal(t, "20000", renewal.Total, "lines and total are the plan's price")
	require.Equal(t, "20000", renewal.Lines[0].Amount)
	require.Equal(t, "paid", renewal.Status)
	require.Equal(t, "20000", renewal.AmountPaid)
	require.Len(t, renewal.Attempts, 1)
	require.Equal(t, "15000", renewal.Attempts[0].Amount, "the card pays what the credit did not")
	require.Equal(t, "15000", gatewayAmount(t, env, renewal.Attempts[0].OrderID))
	require.Equal(t, []any{map[string]any{"amount": "0", "currency": "KRW"}}, customerCredit(t, env, cus))
	env.RequireBalanced()
}

func TestChangeQuantityIsProratedLikeAPlanChange(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	seat := env.CreatePlan("10000", "KRW", "month", 1)
	_, sub := subscribed(t, env, seat, "ok")
	advanceTo(t, env, midPeriod(sub))

	out := changePlan(t, env, sub.ID, map[string]any{"plan_id": seat, "quantity": 3})
	require.Equal(t, 3, out.Subscription.Quantity)
	require.NotNil(t, out.Invoice)
	require.Equal(t, "10000", out.Invoice.Total)
	require.Equal(t, "paid", out.Invoice.Status)
	require.Equal(t, 1, out.Invoice.Lines[0].Quantity)
	require.Equal(t, "-5000", out.Invoice.Lines[0].Amount)
	require.Equal(t, 3, out.Invoice.Lines[1].Quantity)
	require.Equal(t, "15000", out.Invoice.Lines[1].Amount)

	// Fewer seats wait for the period end by default; proration "none" switches now and settles nothing.
	out = changePlan(t, env, sub.ID, map[string]any{"plan_id": seat, "quantity": 2})
	require.Equal(t, 3, out.Subscription.Quantity)
	require.Equal(t, 2, out.Subscription.PendingChange.Quantity)
	out = changePlan(t, env, sub.ID, map[string]any{"plan_id": seat, "quantity": 1, "timing": "immediate", "proration": "none"})
	require.Equal(t, 1, out.Subscription.Quantity)
	require.Nil(t, out.Subscription.PendingChange)
	require.Nil(t, out.Invoice)
	require.Nil(t, out.Credit)
	require.Len(t, subscriptionInvoices(t, env, sub.ID), 2)
	env.RequireBalanced()
}

// USD 9.99 -> 19.99 with 10 of 31 days left: -3.22 (9.99*10/31 = 3.2225..) + 6.45 (19.99*10/31 =
// 6.4483..) = 3.23, each line rounded on its own.
func TestChangePlanRoundsEachLineToCents(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	lite := env.CreatePlan("9.99", "USD", "month", 1)
	plus := env.CreatePlan("19.99", "USD", "month", 1)
	_, sub := subscribed(t, env, lite, "ok")
	days := int(sub.CurrentPeriodEnd.Sub(sub.CurrentPeriodStart) / (24 * time.Hour))
	advanceTo(t, env, sub.CurrentPeriodEnd.AddDate(0, 0, -10))

	out := changePlan(t, env, sub.ID, map[string]any{"plan_id": plus})
	require.NotNil(t, out.Invoice)
	left := decimal.NewFromInt(10)
	total := decimal.NewFromInt(int64(days))
	credit := decimal.RequireFromString("9.99").Mul(left).DivRound(total, 2).Neg()
	debit := decimal.RequireFromString("19.99").Mul(left).DivRound(total, 2)
	require.Equal(t, credit.StringFixed(2), out.Invoice.Lines[0].Amount)
	require.Equal(t, debit.StringFixed(2), out.Invoice.Lines[1].Amount)
	require.Equal(t, credit.Add(debit).StringFixed(2), out.Invoice.Total)
	if days == 31 {
		require.Equal(t, []string{"-3.22", "6.45", "3.23"}, []string{out.Invoice.Lines[0].Amount, out.Invoice.Lines[1].Amount, out.Invoice.Total})
	}
	env.RequireBalanced()
}

func TestChangePlanRefusals(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	krw := env.CreatePlan("10000", "KRW", "month", 1)
	usd := env.CreatePlan("10.00", "USD", "month", 1)
	yearly := env.CreatePlan("100000", "KRW", "year", 1)
	_, sub := subscribed(t, env, krw, "ok")
	path := "/v1/subscriptions/" + sub.ID + "/change-plan"
	cases := []struct {
		token  string
		body   any
		status int
		code   string
	}{
		{testenv.ServiceToken, map[string]any{"plan_id": usd}, 422, "plan_currency_mismatch"},
		{testenv.ServiceToken, map[string]any{"plan_id": yearly}, 422, "plan_interval_mismatch"},
		{testenv.ServiceToken, map[string]any{"plan_id": krw}, 422, "no_change"},
		{testenv.ServiceToken, map[string]any{"plan_id": krw, "quantity": 1}, 422, "no_change"},
		{testenv.ServiceToken, map[string]any{"plan_id": "plan_nope"}, 422, "validation_failed"},
		{testenv.ServiceToken, map[string]any{"plan_id": krw, "quantity": -2}, 422, "validation_failed"},
		{testenv.ServiceToken, map[string]any{"plan_id": krw, "quantity": 2, "timing": "tomorrow"}, 422, "validation_failed"},
		{testenv.ServiceToken, map[string]any{"plan_id": krw, "quantity": 2, "proration": "always"}, 422, "validation_failed"},
		{testenv.ServiceToken, map[string]any{}, 422, "validation_failed"},
		{testenv.ServiceToken, map[string]any{"plan_id": krw, "quantity": 2, "color": "red"}, 400, ""},
		{testenv.SupportToken, map[string]any{"plan_id": krw, "quantity": 2}, 403, ""},
	}
	for _, c := range cases {
		res := env.Do("POST", path, c.token, c.body)
		require.Equal(t, c.status, res.Status, "%v: %s", c.body, res.Body)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
		if c.code != "" {
			require.Equal(t, c.code, res.JSON(t)["code"], "%v", c.body)
		}
	}
	require.Equal(t, 404, env.Do("POST", "/v1/subscriptions/sub_nope/change-plan", testenv.ServiceToken, map[string]any{"plan_id": krw}).Status)

	// A paused subscription cannot change plan: 409 naming the state and what it allows.
	require.Equal(t, 200, env.Do("POST", "/v1/subscriptions/"+sub.ID+"/pause", testenv.ServiceToken, nil).Status)
	res := env.Do("POST", path, testenv.ServiceToken, map[string]any{"plan_id": krw, "quantity": 2})
	require.Equal(t, 409, res.Status, string(res.Body))
	p := res.JSON(t)
	require.Equal(t, "plan_change_not_allowed", p["code"])
	require.Equal(t, "paused", p["state"])
	require.Equal(t, []any{"cancel", "resume"}, p["allowed"])

	after := readSubscription(t, env, sub.ID)
	require.Equal(t, krw, after.PlanID)
	require.Equal(t, 1, after.Quantity)
	require.Len(t, subscriptionInvoices(t, env, sub.ID), 1, "nothing half-written")
	env.RequireBalanced()
}

// A declined proration charge is an invoice like any other: dunning takes it, the subscription goes
// past_due with its grace period, and the change itself stands.
func TestDeclinedProrationChargeFollowsDunning(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	basic := env.CreatePlan("10000", "KRW", "month", 1)
	pro := env.CreatePlan("30000", "KRW", "month", 1)
	cus, sub := subscribed(t, env, basic, "ok")
	advanceTo(t, env, midPeriod(sub))
	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+cus, "insufficient"))

	out := changePlan(t, env, sub.ID, map[string]any{"plan_id": pro})
	require.Equal(t, pro, out.Subscription.PlanID)
	require.Equal(t, "past_due", out.Subscription.Status)
	require.NotNil(t, out.Subscription.Dunning.GraceEndsAt)
	require.NotNil(t, out.Invoice)
	require.Equal(t, "open", out.Invoice.Status)
	require.Equal(t, "10000", out.Invoice.AmountDue)
	require.Len(t, out.Invoice.Attempts, 1)
	require.Equal(t, "declined", out.Invoice.Attempts[0].Status)
	env.RequireBalanced()

	// The soft decline is retried on dunning's schedule; a working card pays it and the subscription recovers.
	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+cus, "ok"))
	env.Advance("48h")
	res := env.Do("GET", "/v1/invoices/"+out.Invoice.ID, testenv.ServiceToken, nil)
	require.Equal(t, "paid", res.JSON(t)["status"], string(res.Body))
	require.Equal(t, "active", readSubscription(t, env, sub.ID).Status)
	env.RequireBalanced()
}
