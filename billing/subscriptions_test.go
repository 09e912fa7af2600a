package billing_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

func TestFirstChargeSucceeds(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer("ok")

	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub := res.JSON(t)
	require.Equal(t, "active", sub["status"])
	require.Equal(t, true, sub["entitled"])
	require.NotEmpty(t, res.Header.Get("ETag"))

	res = env.Do("GET", "/v1/invoices?subscription_id="+sub["id"].(string), testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status)
	var list struct {
		Data []struct {
			ID         string `json:"id"`
			Kind       string `json:"kind"`
			Status     string `json:"status"`
			Total      string `json:"total"`
			AmountPaid string `json:"amount_paid"`
			Lines      []any  `json:"lines"`
			Attempts   []struct {
				Status  string `json:"status"`
				OrderID string `json:"order_id"`
			} `json:"attempts"`
		} `json:"data"`
	}
	res.Decode(t, &list)
	require.Len(t, list.Data, 1)
	inv := list.Data[0]
	require.Equal(t, "initial", inv.Kind)
	require.Equal(t, "paid", inv.Status)
	require.Equal(t, "9900", inv.Total)
	require.Equal(t, "9900", inv.AmountPaid)
	require.Len(t, inv.Lines, 1)
	require.Len(t, inv.Attempts, 1)
	require.Equal(t, "succeeded", inv.Attempts[0].Status)
	require.Equal(t, 1, env.ChargesAtGateway()[inv.Attempts[0].OrderID])

	res = env.Do("GET", "/v1/customers/"+cus+"/balance", testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status)
	require.Equal(t, []any{map[string]any{"amount": "0", "currency": "KRW"}}, res.JSON(t)["receivable"])
	env.RequireBalanced()

	res = env.Do("GET", "/v1/subscriptions/"+sub["id"].(string)+"/timeline", testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status)
	var types []string
	for _, e := range res.JSON(t)["data"].([]any) {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	require.Equal(t, []string{"subscription.created", "invoice.created", "invoice.finalized", "payment.succeeded",
		"invoice.paid", "subscription.activated"}, types)
}

func TestFirstChargeDeclinedIs402AndANewKeyHeals(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("12.50", "USD", "month", 1)
	cus := env.Customer("insufficient")

	res := env.Subscribe(cus, plan)
	require.Equal(t, 402, res.Status, string(res.Body))
	p := res.JSON(t)
	require.Equal(t, "payment_declined", p["code"])
	require.Equal(t, "REJECT_CARD_PAYMENT", p["decline_code"])
	require.NotEmpty(t, p["invoice_id"])
	sub := p["subscription"].(map[string]any)
	require.Equal(t, "incomplete", sub["status"])
	require.Equal(t, false, sub["entitled"])
	require.Equal(t, p["subscription_id"], sub["id"])

	// The customer registers a working card: the open invoice is retried at once and the subscription activates.
	env.AddKey(cus, "ok")
	require.Eventually(t, func() bool { return env.Subscription(sub["id"].(string))["status"] == "active" }, 10*time.Second, 20*time.Millisecond)
	env.RequireBalanced()
}

func TestIncompleteExpiresAfter23Hours(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer("stolen")
	res := env.Subscribe(cus, plan)
	require.Equal(t, 402, res.Status)
	id := res.JSON(t)["subscription_id"].(string)

	env.Advance("22h")
	require.Equal(t, "incomplete", env.Subscription(id)["status"])
	env.Advance("2h")
	require.Equal(t, "incomplete_expired", env.Subscription(id)["status"])
	res = env.Do("GET", "/v1/invoices?subscription_id="+id, testenv.ServiceToken, nil)
	require.Equal(t, "void", res.JSON(t)["data"].([]any)[0].(map[string]any)["status"])
	env.RequireBalanced()
}

// A charge the gateway committed but whose answer was lost: 202 incomplete, then the reconciler finds it.
func TestLostResponseIsResolvedByLookupWithoutASecondCharge(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer("ok")
	env.Sim().SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{CommitThenTimeout: &pgsim.CommitThenTimeoutFault{Rule: pgsim.Rule{Count: 1}}}})

	res := env.Subscribe(cus, plan)
	require.Equal(t, 202, res.Status, string(res.Body))
	sub := res.JSON(t)
	require.Equal(t, "incomplete", sub["status"])
	require.Len(t, env.Sim().Charges(), 1, "the gateway took the money")
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status = 'unknown'`))

	env.Advance("1m") // the reconciler's first lookup is due
	require.Equal(t, "active", env.Subscription(sub["id"].(string))["status"])
	require.Len(t, env.Sim().Charges(), 1, "no second charge")
	require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status IN ('pending', 'unknown')`))
	env.RequireBalanced()
}

// The "stuck cart": reading the subscription resolves its unknown attempt at once.
func TestReadingASubscriptionResolvesItsUnknownAttempt(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer("ok")
	env.Sim().SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{CommitThenTimeout: &pgsim.CommitThenTimeoutFault{Rule: pgsim.Rule{Count: 1}}}})
	res := env.Subscribe(cus, plan)
	require.Equal(t, 202, res.Status)
	require.Equal(t, "active", env.Subscription(res.JSON(t)["id"].(string))["status"])
	require.Len(t, env.Sim().Charges(), 1)
}

func TestSubscriptionValidation(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	noKey := env.CreateCustomer()
	cases := []struct {
		body   map[string]any
		status int
		code   string
	}{
		{map[string]any{"customer_id": noKey, "plan_id": plan}, 422, "no_billing_key"},
		{map[string]any{"customer_id": "cus_nope", "plan_id": plan}, 404, "customer_not_found"},
		{map[string]any{"customer_id": noKey, "plan_id": "plan_nope"}, 422, "validation_failed"},
		{map[string]any{"customer_id": noKey, "plan_id": plan, "quantity": -1}, 422, "validation_failed"},
		{map[string]any{"plan_id": plan}, 422, "validation_failed"},
	}
	for _, c := range cases {
		res := env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, c.body)
		require.Equal(t, c.status, res.Status, "%v: %s", c.body, res.Body)
		require.Equal(t, c.code, res.JSON(t)["code"])
	}
	require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM subscriptions`), "nothing half-written")
	_ = context.Background()
}
