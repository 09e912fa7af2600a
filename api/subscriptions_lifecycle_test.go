package api_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// lifecycleBundle is where most lifecycle tests start: a whole app and an active monthly 9,900 KRW
// subscription whose card works.
type lifecycleBundle struct {
	env      *testenv.Env
	plan     string
	customer string
	sub      subscriptionBody
}

func setupLifecycle(t *testing.T) *lifecycleBundle {
	t.Helper()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus, sub := subscribed(t, env, plan, "ok")
	return &lifecycleBundle{env: env, plan: plan, customer: cus, sub: sub}
}

func lifecycle(t *testing.T, env *testenv.Env, token, subID, action string, body any) (int, subscriptionBody, map[string]any) {
	t.Helper()
	res := env.Do("POST", "/v1/subscriptions/"+subID+"/"+action, token, body)
	var sub subscriptionBody
	if res.Status != 200 {
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), string(res.Body))
		return res.Status, sub, res.JSON(t)
	}
	res.Decode(t, &sub)
	require.Equal(t, etagOf(sub.Version), res.Header.Get("ETag"))
	return res.Status, sub, nil
}

func eventTypes(t *testing.T, env *testenv.Env, subID string) []string {
	t.Helper()
	res := env.Do("GET", "/v1/subscriptions/"+subID+"/timeline?limit=500", testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status)
	var types []string
	for _, e := range res.JSON(t)["data"].([]any) {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	return types
}

func TestCancelNowStopsRenewals(t *testing.T) {
	t.Parallel()
	b := setupLifecycle(t)
	env, sub := b.env, b.sub

	// Support may cancel (their audited action wraps the same billing call).
	status, got, _ := lifecycle(t, env, testenv.SupportToken, sub.ID, "cancel", map[string]any{"reason": "customer asked by phone"})
	require.Equal(t, 200, status)
	require.Equal(t, "canceled", got.Status)
	require.False(t, got.Entitled)
	require.Nil(t, got.NextRenewalAt)
	require.NotNil(t, got.CanceledAt)
	require.Contains(t, eventTypes(t, env, sub.ID), "subscription.canceled")

	env.Advance("1000h")
	require.Len(t, subscriptionInvoices(t, env, sub.ID), 1, "no renewal after a cancel")
	require.Equal(t, "paid", subscriptionInvoices(t, env, sub.ID)[0].Status, "a paid invoice is left as it is")

	// canceled is terminal: every lifecycle call is a 409 that names the state and allows nothing.
	for _, action := range []string{"cancel", "pause", "resume", "resume-cancel"} {
		status, _, p := lifecycle(t, env, testenv.ServiceToken, sub.ID, action, nil)
		require.Equal(t, 409, status, action)
		require.Equal(t, "canceled", p["state"], action)
		require.Empty(t, p["allowed"], action)
	}
	env.RequireBalanced()
}

func TestCancelAtPeriodEndAndItsUndo(t *testing.T) {
	t.Parallel()
	b := setupLifecycle(t)
	env, sub := b.env, b.sub

	status, got, _ := lifecycle(t, env, testenv.ServiceToken, sub.ID, "cancel", map[string]any{"at_period_end": true, "reason": "too expensive"})
	require.Equal(t, 200, status)
	require.Equal(t, "active", got.Status, "service goes on until the period it paid for ends")
	require.True(t, got.Entitled)
	require.True(t, got.CancelAtPeriodEnd)
	require.NotNil(t, got.NextRenewalAt)

	status, got, _ = lifecycle(t, env, testenv.ServiceToken, sub.ID, "resume-cancel", nil)
	require.Equal(t, 200, status)
	require.False(t, got.CancelAtPeriodEnd)
	status, _, p := lifecycle(t, env, testenv.ServiceToken, sub.ID, "resume-cancel", nil)
	require.Equal(t, 409, status)
	require.Equal(t, "cancel_not_scheduled", p["code"])
	require.Equal(t, 403, env.Do("POST", "/v1/subscriptions/"+sub.ID+"/resume-cancel", testenv.SupportToken, nil).Status)

	// Undone: the period end renews.
	advanceTo(t, env, sub.CurrentPeriodEnd)
	require.Len(t, subscriptionInvoices(t, env, sub.ID), 2)
	renewed := readSubscription(t, env, sub.ID)
	require.Equal(t, "active", renewed.Status)

	// Scheduled again: the next period end cancels instead of invoicing.
	status, _, _ = lifecycle(t, env, testenv.ServiceToken, sub.ID, "cancel", map[string]any{"at_period_end": true})
	require.Equal(t, 200, status)
	advanceTo(t, env, renewed.CurrentPeriodEnd)
	ended := readSubscription(t, env, sub.ID)
	require.Equal(t, "canceled", ended.Status)
	require.Nil(t, ended.NextRenewalAt)
	require.True(t, ended.CanceledAt.Equal(renewed.CurrentPeriodEnd))
	require.Len(t, subscriptionInvoices(t, env, sub.ID), 2, "no invoice for the period after the cancel")
	env.RequireBalanced()
}

// Canceling a past_due subscription voids its unpaid renewal (nothing was collected): the receivable is
// reversed and dunning stops.
func TestCancelNowVoidsAnUnpaidInvoice(t *testing.T) {
	t.Parallel()
	b := setupLifecycle(t)
	env, cus, sub := b.env, b.customer, b.sub
	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+cus, "insufficient"))
	advanceTo(t, env, sub.CurrentPeriodEnd)
	require.Equal(t, "past_due", readSubscription(t, env, sub.ID).Status)

	status, sub2, _ := lifecycle(t, env, testenv.ServiceToken, sub.ID, "cancel", map[string]any{"at_period_end": false})
	require.Equal(t, 200, status)
	require.Equal(t, "canceled", sub2.Status)
	invs := subscriptionInvoices(t, env, sub.ID)
	require.Len(t, invs, 2)
	require.Equal(t, "void", invs[1].Status)
	res := env.Do("GET", "/v1/customers/"+cus+"/balance", testenv.ServiceToken, nil)
	require.Equal(t, []any{map[string]any{"amount": "0", "currency": "KRW"}}, res.JSON(t)["receivable"])

	// No retry runs for the canceled subscription.
	attempts := env.QueryInt(`SELECT count(*) FROM payment_attempts`)
	env.Advance("400h")
	require.Equal(t, attempts, env.QueryInt(`SELECT count(*) FROM payment_attempts`))
	require.Equal(t, "canceled", readSubscription(t, env, sub.ID).Status)
	env.RequireBalanced()
}

func TestCancelAtPeriodEndIsRefusedWhereNoRenewalComes(t *testing.T) {
	t.Parallel()
	b := setupLifecycle(t)
	env, sub := b.env, b.sub
	status, _, _ := lifecycle(t, env, testenv.ServiceToken, sub.ID, "pause", nil)
	require.Equal(t, 200, status)

	status, _, p := lifecycle(t, env, testenv.ServiceToken, sub.ID, "cancel", map[string]any{"at_period_end": true})
	require.Equal(t, 409, status)
	require.Equal(t, "cancel_at_period_end_not_allowed", p["code"])
	require.Equal(t, []any{"cancel", "resume"}, p["allowed"])

	status, _, p = lifecycle(t, env, testenv.ServiceToken, sub.ID, "cancel", map[string]any{"reason": string(make([]byte, 501))})
	require.Equal(t, 422, status)
	require.Equal(t, "validation_failed", p["code"])
	status, _, _ = lifecycle(t, env, testenv.ServiceToken, sub.ID, "cancel", map[string]any{"when": "now"})
	require.Equal(t, 400, status)
	require.Equal(t, "paused", readSubscription(t, env, sub.ID).Status)
}

func TestPauseAndResumeWithinThePeriod(t *testing.T) {
	t.Parallel()
	b := setupLifecycle(t)
	env, sub := b.env, b.sub

	status, got, _ := lifecycle(t, env, testenv.ServiceToken, sub.ID, "pause", map[string]any{})
	require.Equal(t, 200, status)
	require.Equal(t, "paused", got.Status)
	require.False(t, got.Entitled)
	require.NotNil(t, got.NextRenewalAt, "kept: paused subscriptions are simply not renewed")

	status, _, p := lifecycle(t, env, testenv.ServiceToken, sub.ID, "pause", nil)
	require.Equal(t, 409, status)
	require.Equal(t, "illegal_state_transition", p["code"])
	require.Equal(t, []any{"cancel", "resume"}, p["allowed"])
	require.Equal(t, 403, env.Do("POST", "/v1/subscriptions/"+sub.ID+"/pause", testenv.SupportToken, nil).Status)

	env.Advance("72h")
	status, got, _ = lifecycle(t, env, testenv.ServiceToken, sub.ID, "resume", nil)
	require.Equal(t, 200, status)
	require.Equal(t, "active", got.Status)
	require.True(t, got.CurrentPeriodEnd.Equal(sub.CurrentPeriodEnd), "a resume inside the period keeps it")
	require.Len(t, subscriptionInvoices(t, env, sub.ID), 1)
	status, _, p = lifecycle(t, env, testenv.ServiceToken, sub.ID, "resume", nil)
	require.Equal(t, 409, status)
	require.Equal(t, "active", p["state"])

	advanceTo(t, env, sub.CurrentPeriodEnd)
	require.Len(t, subscriptionInvoices(t, env, sub.ID), 2, "renews as usual after the resume")
	types := eventTypes(t, env, sub.ID)
	require.Contains(t, types, "subscription.paused")
	require.Contains(t, types, "subscription.resumed")
	env.RequireBalanced()
}

// A period that ends while paused is not renewed; the resume starts a new period at once and charges it,
// so the customer never pays for the paused time.
func TestResumeAfterThePeriodEndedRenewsAtTheResume(t *testing.T) {
	t.Parallel()
	b := setupLifecycle(t)
	env, sub := b.env, b.sub
	status, _, _ := lifecycle(t, env, testenv.ServiceToken, sub.ID, "pause", nil)
	require.Equal(t, 200, status)

	resumeAt := sub.CurrentPeriodEnd.Add(10 * 24 * time.Hour)
	advanceTo(t, env, resumeAt)
	require.Len(t, subscriptionInvoices(t, env, sub.ID), 1, "no renewal while paused")
	require.Equal(t, "paused", readSubscription(t, env, sub.ID).Status)

	status, got, _ := lifecycle(t, env, testenv.ServiceToken, sub.ID, "resume", nil)
	require.Equal(t, 200, status)
	require.Equal(t, "active", got.Status)
	require.True(t, got.CurrentPeriodStart.Equal(resumeAt), "period starts at the resume: %s", got.CurrentPeriodStart)
	require.True(t, got.CurrentPeriodEnd.Equal(resumeAt.AddDate(0, 1, 0)), "and runs a month: %s", got.CurrentPeriodEnd)
	invs := subscriptionInvoices(t, env, sub.ID)
	require.Len(t, invs, 2)
	require.Equal(t, "renewal", invs[1].Kind)
	require.Equal(t, "paid", invs[1].Status)
	require.Equal(t, "9900", invs[1].Total)
	require.True(t, invs[1].PeriodStart.Equal(resumeAt))

	// Resuming did not queue a second charge for the same period.
	env.Advance("1h")
	require.Len(t, subscriptionInvoices(t, env, sub.ID), 2)
	require.Len(t, env.Sim().Charges(), 2)
	env.RequireBalanced()
}

// A charge whose outcome is unknown may have moved money, so canceling does not void its invoice: the
// invoice stays open, and when the lookup finds the charge it is paid; the subscription stays canceled.
func TestCancelWithAChargeInFlightKeepsItsInvoice(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	basic := env.CreatePlan("10000", "KRW", "month", 1)
	pro := env.CreatePlan("30000", "KRW", "month", 1)
	_, sub := subscribed(t, env, basic, "ok")
	advanceTo(t, env, midPeriod(sub))
	env.Sim().SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{CommitThenTimeout: &pgsim.CommitThenTimeoutFault{Rule: pgsim.Rule{Count: 1}}}})
	out := changePlan(t, env, sub.ID, map[string]any{"plan_id": pro})
	require.NotNil(t, out.Invoice)
	require.Equal(t, "open", out.Invoice.Status)
	require.Equal(t, "unknown", out.Invoice.Attempts[0].Status)

	status, got, _ := lifecycle(t, env, testenv.ServiceToken, sub.ID, "cancel", nil)
	require.Equal(t, 200, status)
	require.Equal(t, "canceled", got.Status)
	res := env.Do("GET", "/v1/invoices/"+out.Invoice.ID, testenv.ServiceToken, nil)
	require.Equal(t, "open", res.JSON(t)["status"], "not voided: money may have moved")

	env.Advance("1m") // the reconciler's first lookup
	res = env.Do("GET", "/v1/invoices/"+out.Invoice.ID, testenv.ServiceToken, nil)
	require.Equal(t, "paid", res.JSON(t)["status"], string(res.Body))
	require.Equal(t, "canceled", readSubscription(t, env, sub.ID).Status)
	require.Len(t, env.Sim().Charges(), 2, "one charge for the proration, no second")
	env.RequireBalanced()
}
