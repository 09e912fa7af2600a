package billing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// supportBundle is where most support tests start: a whole app (support acts through the REST API) and a
// monthly subscription whose first renewal was declined for insufficient funds, so it is past_due with
// one open invoice.
type supportBundle struct {
	env  *testenv.Env
	plan string
	delinquency
}

// setupSupport builds the usual bundle: a 9,900 KRW plan.
func setupSupport(t *testing.T) *supportBundle {
	t.Helper()
	return setupSupportPriced(t, "9900", "KRW")
}

// setupSupportPriced builds the bundle on a monthly plan of another price or currency.
func setupSupportPriced(t *testing.T, price, currency string) *supportBundle {
	t.Helper()
	env := testenv.New(t)
	plan := env.CreatePlan(price, currency, "month", 1)
	return &supportBundle{env: env, plan: plan, delinquency: renewWith(t, env, plan, pgsim.BehaviorInsufficient)}
}

// support sends a support action with the support token and a request id to find in the audit log.
func support(t *testing.T, env *testenv.Env, path string, body any, requestID string) testenv.Response {
	t.Helper()
	return env.Do("POST", "/v1/support"+path, testenv.SupportToken, body, "X-Request-Id: "+requestID)
}

// auditRows reads the audit log of a target through the API.
func auditRows(t *testing.T, env *testenv.Env, targetID string) []map[string]any {
	t.Helper()
	res := env.Do("GET", "/v1/support/audit?target_id="+targetID, testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	var out []map[string]any
	for _, d := range res.JSON(t)["data"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// requireAudit checks the last audit row of target: who, what, why, from where, and the snapshots.
func requireAudit(t *testing.T, env *testenv.Env, targetType, targetID, action, reason, requestID string) map[string]any {
	t.Helper()
	rows := auditRows(t, env, targetID)
	require.NotEmpty(t, rows)
	r := rows[len(rows)-1]
	require.Equal(t, action, r["action"])
	require.Equal(t, map[string]any{"type": targetType, "id": targetID}, r["target"])
	require.Equal(t, reason, r["reason"])
	require.Equal(t, "support", r["role"])
	require.Regexp(t, `^bootstrap:support:`, r["actor"])
	require.Equal(t, requestID, r["request_id"])
	require.Equal(t, "api", r["origin"])
	require.NotEmpty(t, r["at"])
	require.NotNil(t, r["before"])
	return r
}

// requireConflict checks a 409 names the state and lists the allowed support actions.
func requireConflict(t *testing.T, res testenv.Response, state string, allowed ...string) {
	t.Helper()
	require.Equal(t, 409, res.Status, string(res.Body))
	p := res.JSON(t)
	require.Equal(t, "illegal_state_transition", p["code"])
	require.Contains(t, p["detail"], state)
	require.Equal(t, state, p["state"])
	got := []string{}
	for _, a := range p["allowed"].([]any) {
		got = append(got, a.(string))
	}
	if allowed == nil {
		allowed = []string{}
	}
	require.Equal(t, allowed, got)
}

func TestSupportRetryChargesNowOnceAndIsAudited(t *testing.T) {
	t.Parallel()
	b := setupSupport(t)
	env, d := b.env, b.delinquency

	// Still declined: the answer says so, the attempt is on the invoice, dunning goes on.
	res := support(t, env, "/invoices/"+d.invoice+"/retry", map[string]any{"reason": "customer topped up"}, "req-retry-1")
	require.Equal(t, 200, res.Status, string(res.Body))
	body := res.JSON(t)
	require.Equal(t, "declined", body["charge"].(map[string]any)["outcome"])
	require.Equal(t, "REJECT_CARD_PAYMENT", body["charge"].(map[string]any)["decline_code"])
	require.Equal(t, "open", body["invoice"].(map[string]any)["status"])
	row := requireAudit(t, env, "invoice", d.invoice, "retry", "customer topped up", "req-retry-1")
	require.Equal(t, "open", row["before"].(map[string]any)["status"])

	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+d.customer, pgsim.BehaviorOK))
	res = support(t, env, "/invoices/"+d.invoice+"/retry", map[string]any{"reason": "card fixed"}, "req-retry-2")
	require.Equal(t, 200, res.Status, string(res.Body))
	body = res.JSON(t)
	require.Equal(t, "succeeded", body["charge"].(map[string]any)["outcome"])
	require.Equal(t, "paid", body["invoice"].(map[string]any)["status"])
	require.Equal(t, "active", env.Subscription(d.sub)["status"])
	require.Len(t, auditRows(t, env, d.invoice), 2)

	// Again: the invoice is paid, nothing is charged, nothing new is audited.
	res = support(t, env, "/invoices/"+d.invoice+"/retry", map[string]any{"reason": "card fixed"}, "req-retry-3")
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Nil(t, res.JSON(t)["charge"])
	require.Equal(t, "paid", res.JSON(t)["invoice"].(map[string]any)["status"])
	require.Len(t, auditRows(t, env, d.invoice), 2)
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1 AND status = 'succeeded'`, d.invoice))
	env.RequireBalanced()
}

// "Retry now" while an attempt's outcome is unknown looks that attempt up instead of charging again.
func TestSupportRetryResolvesTheAttemptInFlight(t *testing.T) {
	t.Parallel()
	b := setupSupport(t)
	env, d := b.env, b.delinquency
	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+d.customer, pgsim.BehaviorOK))
	// The next charge is committed at the gateway but its answer is lost: the attempt is unknown.
	env.Sim().SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{Error5xxAfterCommit: &pgsim.Rule{Count: 1}}})
	retry, err := time.Parse(time.RFC3339Nano, env.Subscription(d.sub)["dunning"].(map[string]any)["next_attempt_at"].(string))
	require.NoError(t, err)
	advanceTo(t, env, retry)
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1 AND status IN ('pending', 'unknown')`, d.invoice))

	// Mark-paid, void and write-off refuse while money may have moved.
	for _, action := range []string{"mark-paid", "void", "write-off"} {
		res := support(t, env, "/invoices/"+d.invoice+"/"+action, map[string]any{"reason": "r", "reference": "x", "amount": "9900"}, "req")
		if action != "mark-paid" {
			res = support(t, env, "/invoices/"+d.invoice+"/"+action, map[string]any{"reason": "r"}, "req")
		}
		require.Equal(t, 409, res.Status, "%s: %s", action, res.Body)
		require.Equal(t, "payment_in_flight", res.JSON(t)["code"], action)
		require.Equal(t, []any{"retry"}, res.JSON(t)["allowed"], action)
	}

	res := support(t, env, "/invoices/"+d.invoice+"/retry", map[string]any{"reason": "customer says it went through"}, "req-inflight")
	require.Equal(t, 200, res.Status, string(res.Body))
	body := res.JSON(t)
	require.Equal(t, true, body["in_flight"])
	require.Equal(t, "succeeded", body["charge"].(map[string]any)["outcome"])
	require.Equal(t, "paid", body["invoice"].(map[string]any)["status"])
	row := requireAudit(t, env, "invoice", d.invoice, "retry", "customer says it went through", "req-inflight")
	require.Contains(t, row["after"].(map[string]any), "lookup")
	// One charge at the gateway for the renewal's successful attempt: the retry did not send another.
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1 AND status = 'succeeded'`, d.invoice))
	done := 0
	for _, c := range env.Sim().Charges() {
		if c.Status == "DONE" && len(c.OrderID) > len(d.invoice) && c.OrderID[:len(d.invoice)] == d.invoice {
			done++
		}
	}
	require.Equal(t, 1, done)
	env.RequireBalanced()
}

func TestSupportMarkPaidPostsCashAndRecovers(t *testing.T) {
	t.Parallel()
	b := setupSupportPriced(t, "12.50", "USD")
	env, d := b.env, b.delinquency
	path := "/invoices/" + d.invoice + "/mark-paid"

	for _, bad := range []map[string]any{
		{"reason": "wire", "reference": "TX-1", "amount": "12.00"},  // not the amount due
		{"reason": "wire", "reference": "TX-1", "amount": "12.505"}, // more decimals than USD has
		{"reason": "", "reference": "TX-1", "amount": "12.50"},      // no reason
		{"reason": "wire", "reference": "", "amount": "12.50"},      // no reference
		{"reason": "wire", "reference": "TX-1", "amount": "twelve"}, // not an amount
	} {
		res := support(t, env, path, bad, "req")
		require.Equal(t, 422, res.Status, "%v: %s", bad, res.Body)
	}
	res := support(t, env, path, map[string]any{"reason": "wire", "reference": "TX-1", "amount": 12.5}, "req")
	require.Equal(t, 400, res.Status, "amounts are strings, never floats")
	require.Empty(t, auditRows(t, env, d.invoice), "refused actions leave no audit row")

	req := map[string]any{"reason": "paid by bank transfer", "reference": "TX-1", "amount": "12.50"}
	res = support(t, env, path, req, "req-paid")
	require.Equal(t, 200, res.Status, string(res.Body))
	inv := res.JSON(t)
	require.Equal(t, "paid", inv["status"])
	require.Equal(t, "0.00", inv["amount_due"])
	require.Equal(t, "12.50", inv["amount_paid"])
	sub := env.Subscription(d.sub)
	require.Equal(t, "active", sub["status"])
	require.Nil(t, sub["dunning"].(map[string]any)["next_attempt_at"], "no more retries")
	require.Equal(t, 1250, env.QueryInt(`SELECT (sum(amount) * 100)::int FROM ledger_entries WHERE account = 'cash:offline'`))
	require.Equal(t, 0, env.QueryInt(`SELECT coalesce(sum(amount), 0)::int FROM ledger_entries WHERE account = $1`, "receivable:"+d.customer))
	row := requireAudit(t, env, "invoice", d.invoice, "mark-paid", "paid by bank transfer", "req-paid")
	require.Equal(t, "open", row["before"].(map[string]any)["status"])
	require.Equal(t, "paid", row["after"].(map[string]any)["status"])
	require.Equal(t, "TX-1", row["after"].(map[string]any)["offline_reference"])

	// The same request again is a no-op with the same answer; another payment for it is a conflict.
	res = support(t, env, path, req, "req-again")
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "paid", res.JSON(t)["status"])
	require.Equal(t, inv["version"], res.JSON(t)["version"])
	require.Len(t, auditRows(t, env, d.invoice), 1)
	requireConflict(t, support(t, env, path, map[string]any{"reason": "wire", "reference": "TX-2", "amount": "12.50"}, "req"), "paid")

	// The retry that dunning had scheduled finds nothing to do.
	advanceTo(t, env, d.failedAt.Add(5*day))
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1`, d.invoice))
	env.RequireBalanced()
}

func TestSupportVoidWaivesTheInvoiceAndRecovers(t *testing.T) {
	t.Parallel()
	b := setupSupport(t)
	env, d := b.env, b.delinquency
	advanceTo(t, env, d.failedAt.Add(8*day))
	require.Equal(t, "suspended", env.Subscription(d.sub)["status"])

	res := support(t, env, "/invoices/"+d.invoice+"/void", map[string]any{"reason": "goodwill, ticket 77"}, "req-void")
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "void", res.JSON(t)["status"])
	require.Equal(t, "active", env.Subscription(d.sub)["status"], "nothing is owed any more")
	requireAudit(t, env, "invoice", d.invoice, "void", "goodwill, ticket 77", "req-void")
	require.Equal(t, 0, env.QueryInt(`SELECT coalesce(sum(amount), 0)::int FROM ledger_entries WHERE account = $1`, "receivable:"+d.customer))

	res = support(t, env, "/invoices/"+d.invoice+"/void", map[string]any{"reason": "goodwill, ticket 77"}, "req-void-2")
	require.Equal(t, 200, res.Status, "voiding a void invoice is a no-op")
	require.Len(t, auditRows(t, env, d.invoice), 1)

	// The first invoice was paid: nothing but a refund could undo it.
	first := subInvoices(t, env, d.sub)[0]["id"].(string)
	requireConflict(t, support(t, env, "/invoices/"+first+"/void", map[string]any{"reason": "x"}, "req"), "paid")
	requireConflict(t, support(t, env, "/invoices/"+first+"/write-off", map[string]any{"reason": "x"}, "req"), "paid")
	requireConflict(t, support(t, env, "/invoices/"+d.invoice+"/retry", map[string]any{"reason": "x"}, "req"), "void")
	require.Empty(t, auditRows(t, env, first))

	advanceTo(t, env, d.failedAt.Add(20*day))
	require.Equal(t, "active", env.Subscription(d.sub)["status"], "no dunning step fires for the voided invoice")
	env.RequireBalanced()
}

func TestSupportWriteOffThenLatePayment(t *testing.T) {
	t.Parallel()
	b := setupSupport(t)
	env, d := b.env, b.delinquency

	res := support(t, env, "/invoices/"+d.invoice+"/write-off", map[string]any{"reason": "customer insolvent"}, "req-wo")
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "uncollectible", res.JSON(t)["status"])
	require.Equal(t, 9900, env.QueryInt(`SELECT sum(amount)::int FROM ledger_entries WHERE account = 'bad_debt'`))
	row := requireAudit(t, env, "invoice", d.invoice, "write-off", "customer insolvent", "req-wo")
	require.Equal(t, "uncollectible", row["after"].(map[string]any)["status"])

	res = support(t, env, "/invoices/"+d.invoice+"/write-off", map[string]any{"reason": "customer insolvent"}, "req-wo-2")
	require.Equal(t, 200, res.Status)
	require.Equal(t, "uncollectible", res.JSON(t)["status"])
	require.Len(t, auditRows(t, env, d.invoice), 1)
	requireConflict(t, support(t, env, "/invoices/"+d.invoice+"/void", map[string]any{"reason": "x"}, "req"), "uncollectible", "mark-paid")
	requireConflict(t, support(t, env, "/invoices/"+d.invoice+"/retry", map[string]any{"reason": "x"}, "req"), "uncollectible", "mark-paid")

	// No retry comes for a written-off invoice.
	advanceTo(t, env, d.failedAt.Add(5*day))
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1`, d.invoice))

	// The customer pays after all: the bad debt is reversed for what came in.
	res = support(t, env, "/invoices/"+d.invoice+"/mark-paid", map[string]any{"reason": "late transfer", "reference": "TX-9", "amount": "9900"}, "req-late")
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "paid", res.JSON(t)["status"])
	require.Equal(t, 0, env.QueryInt(`SELECT sum(amount)::int FROM ledger_entries WHERE account = 'bad_debt'`))
	require.Equal(t, "active", env.Subscription(d.sub)["status"])
	env.RequireBalanced()
}

func TestSupportExtendGraceKeepsServiceOn(t *testing.T) {
	t.Parallel()
	b := setupSupport(t)
	env, d := b.env, b.delinquency
	path := "/subscriptions/" + d.sub + "/extend-grace"
	until := d.failedAt.Add(10 * day)

	require.Equal(t, 422, support(t, env, path, map[string]any{"until": d.failedAt.Add(-day), "reason": "x"}, "req").Status, "in the past")
	require.Equal(t, 422, support(t, env, path, map[string]any{"until": d.failedAt.Add(3 * day), "reason": "x"}, "req").Status, "shorter")
	require.Equal(t, 422, support(t, env, path, map[string]any{"until": d.failedAt.Add(400 * day), "reason": "x"}, "req").Status, "too far")
	require.Equal(t, 422, support(t, env, path, map[string]any{"reason": "x"}, "req").Status, "until is required")
	require.Equal(t, 422, support(t, env, path, map[string]any{"until": until}, "req").Status, "the reason is required")

	res := support(t, env, path, map[string]any{"until": until, "reason": "hospital stay"}, "req-grace")
	require.Equal(t, 200, res.Status, string(res.Body))
	dun := res.JSON(t)["dunning"].(map[string]any)
	require.Equal(t, until.UTC().Format(time.RFC3339), dun["grace_ends_at"])
	row := requireAudit(t, env, "subscription", d.sub, "extend-grace", "hospital stay", "req-grace")
	require.Equal(t, d.failedAt.Add(7*day).UTC().Format(time.RFC3339), row["before"].(map[string]any)["grace_ends_at"])
	require.Equal(t, 200, support(t, env, path, map[string]any{"until": until, "reason": "hospital stay"}, "req").Status)
	require.Len(t, auditRows(t, env, d.sub), 1, "the same extension again changes nothing")

	advanceTo(t, env, d.failedAt.Add(9*day))
	sub := env.Subscription(d.sub)
	require.Equal(t, "past_due", sub["status"], "day 9: the old grace end (day 7) did not suspend")
	require.Equal(t, true, sub["entitled"])
	advanceTo(t, env, d.failedAt.Add(11*day))
	require.Equal(t, "suspended", env.Subscription(d.sub)["status"])

	requireConflict(t, support(t, env, path, map[string]any{"until": d.failedAt.Add(12 * day), "reason": "x"}, "req"),
		"suspended", "cancel", "pause-dunning")
	env.RequireBalanced()
}

func TestSupportPauseDunningStopsTheClockUntilItEnds(t *testing.T) {
	t.Parallel()
	b := setupSupport(t)
	env, d := b.env, b.delinquency
	before := env.Subscription(d.sub)["dunning"].(map[string]any)
	retry, err := time.Parse(time.RFC3339Nano, before["next_attempt_at"].(string))
	require.NoError(t, err)
	path := "/subscriptions/" + d.sub + "/pause-dunning"

	until := d.failedAt.Add(5 * day)
	res := support(t, env, path, map[string]any{"until": until, "reason": "promised to pay on Friday"}, "req-pause")
	require.Equal(t, 200, res.Status, string(res.Body))
	dun := res.JSON(t)["dunning"].(map[string]any)
	require.Equal(t, true, dun["paused"])
	require.Equal(t, until.UTC().Format(time.RFC3339), dun["paused_until"])
	requireAudit(t, env, "subscription", d.sub, "pause-dunning", "promised to pay on Friday", "req-pause")
	require.Equal(t, 200, support(t, env, path, map[string]any{"until": until, "reason": "again"}, "req").Status)
	require.Len(t, auditRows(t, env, d.sub), 1)

	advanceTo(t, env, d.failedAt.Add(4*day))
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1`, d.invoice), "no retry while paused")
	row := delinquentRow(t, env, d.sub)
	require.Equal(t, true, row["dunning_paused"])

	// At `until` the clock runs again, every deadline five days later than it was.
	advanceTo(t, env, until.Add(time.Minute))
	sub := env.Subscription(d.sub)
	dun = sub["dunning"].(map[string]any)
	require.Equal(t, false, dun["paused"])
	require.Equal(t, "past_due", sub["status"])
	require.Equal(t, d.failedAt.Add(12*day).UTC().Format(time.RFC3339), dun["grace_ends_at"])
	require.Equal(t, d.failedAt.Add(20*day).UTC().Format(time.RFC3339), dun["dunning_ends_at"])
	require.Equal(t, retry.Add(5*day).UTC().Format(time.RFC3339Nano), dun["next_attempt_at"])

	advanceTo(t, env, retry.Add(5*day))
	require.Equal(t, 2, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1`, d.invoice), "the retry, moved on")
	advanceTo(t, env, d.failedAt.Add(13*day))
	require.Equal(t, "suspended", env.Subscription(d.sub)["status"], "grace ends five days late")
	env.RequireBalanced()
}

func TestSupportPauseWithoutEndIsResumedByHand(t *testing.T) {
	t.Parallel()
	b := setupSupport(t)
	env, d := b.env, b.delinquency
	base := "/subscriptions/" + d.sub

	res := support(t, env, base+"/resume-dunning", map[string]any{"reason": "nothing to resume"}, "req")
	require.Equal(t, 200, res.Status, "resuming what is not paused is a no-op")
	require.Empty(t, auditRows(t, env, d.sub))
	require.Equal(t, 422, support(t, env, base+"/resume-dunning", map[string]any{"reason": "x", "until": d.failedAt.Add(day)}, "req").Status)

	require.Equal(t, 200, support(t, env, base+"/pause-dunning", map[string]any{"reason": "disputed charge"}, "req-pause").Status)
	advanceTo(t, env, d.failedAt.Add(30*day))
	sub := env.Subscription(d.sub)
	require.Equal(t, "past_due", sub["status"], "neither grace end nor the final action comes while paused")
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1`, d.invoice))

	res = support(t, env, base+"/resume-dunning", map[string]any{"reason": "dispute settled"}, "req-resume")
	require.Equal(t, 200, res.Status, string(res.Body))
	dun := res.JSON(t)["dunning"].(map[string]any)
	require.Equal(t, false, dun["paused"])
	require.Equal(t, d.failedAt.Add(37*day).UTC().Format(time.RFC3339), dun["grace_ends_at"], "30 days paused: grace ends 30 days late")
	row := requireAudit(t, env, "subscription", d.sub, "resume-dunning", "dispute settled", "req-resume")
	require.Equal(t, true, row["before"].(map[string]any)["dunning_paused"])
	require.Equal(t, false, row["after"].(map[string]any)["dunning_paused"])
	require.Len(t, auditRows(t, env, d.sub), 2)

	advanceTo(t, env, d.failedAt.Add(70*day))
	require.Equal(t, "canceled", env.Subscription(d.sub)["status"], "dunning ran its course after the resume")
	requireConflict(t, support(t, env, base+"/pause-dunning", map[string]any{"reason": "x"}, "req"), "canceled")
	env.RequireBalanced()
}

func delinquentRow(t *testing.T, env *testenv.Env, subID string) map[string]any {
	t.Helper()
	res := env.Do("GET", "/v1/support/delinquent?limit=500", testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	for _, r := range res.JSON(t)["data"].([]any) {
		if m := r.(map[string]any); m["subscription_id"] == subID {
			return m
		}
	}
	t.Fatalf("%s is not on the delinquent list", subID)
	return nil
}

func delinquentIDs(t *testing.T, env *testenv.Env, query string) []string {
	t.Helper()
	res := env.Do("GET", "/v1/support/delinquent?"+query, testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	ids := []string{}
	for _, r := range res.JSON(t)["data"].([]any) {
		ids = append(ids, r.(map[string]any)["subscription_id"].(string))
	}
	return ids
}

func TestSupportDelinquentListOldestFirstWithFilters(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	start := clockNow(t, env)
	soft := subscribeFor(t, env, plan, pgsim.BehaviorInsufficient)
	advanceTo(t, env, start.Add(2*day))
	hard := subscribeFor(t, env, plan, pgsim.BehaviorStolen)
	advanceTo(t, env, start.Add(5*day))
	healthy := subscribeFor(t, env, plan, pgsim.BehaviorOK)
	// Day 8 of the soft decline: suspended after attempts on days 0, 1, 3 and (unless the retry waits for
	// a payday) 7. The hard one renewed 2 to 5 days later, as the month lengths fall: still past due. The
	// healthy one renewed.
	advanceTo(t, env, soft.failedAt.Add(8*day))
	soft, hard, healthy = soft.renewal(t, env), hard.renewal(t, env), healthy.renewal(t, env)
	softDays := int(clockNow(t, env).Sub(soft.failedAt) / day)
	hardDays := int(clockNow(t, env).Sub(hard.failedAt) / day)
	require.Equal(t, 8, softDays)
	require.Less(t, hardDays, softDays, "the hard decline is the younger one")

	require.Equal(t, []string{soft.sub, hard.sub}, delinquentIDs(t, env, ""), "oldest first; active ones are not listed")
	row := delinquentRow(t, env, soft.sub)
	require.Equal(t, soft.customer, row["customer_id"])
	require.Equal(t, "suspended", row["status"])
	require.Equal(t, "9900", row["amount_due"])
	require.Equal(t, "KRW", row["currency"])
	declined := env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1 AND status = 'declined'`, soft.invoice)
	require.Contains(t, []int{3, 4}, declined)
	require.EqualValues(t, declined, row["attempts"])
	require.Equal(t, "REJECT_CARD_PAYMENT", row["last_decline_code"])
	require.Equal(t, "soft", row["last_decline_class"])
	require.Equal(t, false, row["dunning_paused"])
	require.NotNil(t, row["next_attempt_at"])
	require.EqualValues(t, softDays, row["days_delinquent"])
	for _, k := range []string{"subscription_id", "customer_id", "status", "amount_due", "currency", "days_delinquent", "attempts",
		"next_attempt_at", "last_decline_code", "last_decline_class", "dunning_paused"} {
		require.Contains(t, row, k)
	}
	hrow := delinquentRow(t, env, hard.sub)
	require.Equal(t, "hard", hrow["last_decline_class"])
	require.Nil(t, hrow["next_attempt_at"], "a hard decline waits for a new key")

	require.Equal(t, "past_due", hrow["status"])
	require.EqualValues(t, 1, hrow["attempts"])
	require.Equal(t, []string{soft.sub}, delinquentIDs(t, env, "state=suspended"))
	require.Equal(t, []string{hard.sub}, delinquentIDs(t, env, "state=past_due"))
	require.Empty(t, delinquentIDs(t, env, "state=unpaid"))
	require.EqualValues(t, hardDays, hrow["days_delinquent"])
	require.Equal(t, []string{soft.sub}, delinquentIDs(t, env, fmt.Sprintf("min_days=%d", hardDays+1)))
	require.Equal(t, []string{soft.sub, hard.sub}, delinquentIDs(t, env, fmt.Sprintf("min_days=%d", hardDays)))
	require.Equal(t, []string{hard.sub}, delinquentIDs(t, env, "decline_class=hard"))
	require.Equal(t, []string{soft.sub, hard.sub}, delinquentIDs(t, env, "gateway=sim"))
	require.Empty(t, delinquentIDs(t, env, "gateway=toss"))
	require.NotContains(t, delinquentIDs(t, env, ""), healthy.sub)

	// Pages of one, following the cursor.
	res := env.Do("GET", "/v1/support/delinquent?limit=1", testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status)
	first := res.JSON(t)
	require.Len(t, first["data"], 1)
	cursor := first["next_cursor"].(string)
	res = env.Do("GET", "/v1/support/delinquent?limit=1&cursor="+cursor, testenv.SupportToken, nil)
	require.Equal(t, []string{hard.sub}, []string{res.JSON(t)["data"].([]any)[0].(map[string]any)["subscription_id"].(string)})
	require.Nil(t, res.JSON(t)["next_cursor"])

	for _, bad := range []string{"state=active", "min_days=-1", "min_days=x", "decline_class=medium", "limit=0"} {
		require.Equal(t, 422, env.Do("GET", "/v1/support/delinquent?"+bad, testenv.SupportToken, nil).Status, bad)
	}
	env.RequireBalanced()
}

// Support reaches its endpoints and reads, but nothing of admin's; a merchant's service token reaches
// none of support's.
func TestSupportRolesAreKeptApart(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/plans"},
		{"GET", "/v1/ledger/trial-balance"},
		{"GET", "/v1/test-clock"},
		{"POST", "/v1/test-clock/advance"},
	} {
		res := env.Do(c.method, c.path, testenv.SupportToken, map[string]any{})
		if c.method == "GET" {
			res = env.Do(c.method, c.path, testenv.SupportToken, nil)
		}
		require.Equal(t, 403, res.Status, "support %s %s: %s", c.method, c.path, res.Body)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/support/delinquent"},
		{"GET", "/v1/support/audit"},
		{"POST", "/v1/support/invoices/inv_x/retry"},
		{"POST", "/v1/support/invoices/inv_x/mark-paid"},
		{"POST", "/v1/support/invoices/inv_x/void"},
		{"POST", "/v1/support/invoices/inv_x/write-off"},
		{"POST", "/v1/support/subscriptions/sub_x/extend-grace"},
		{"POST", "/v1/support/subscriptions/sub_x/pause-dunning"},
		{"POST", "/v1/support/subscriptions/sub_x/resume-dunning"},
	} {
		var body any
		if c.method == "POST" {
			body = map[string]any{"reason": "x"}
		}
		require.Equal(t, 403, env.Do(c.method, c.path, testenv.ServiceToken, body).Status, "service %s %s", c.method, c.path)
		require.Equal(t, 401, env.Do(c.method, c.path, "", body).Status)
	}
	require.Equal(t, 200, env.Do("GET", "/v1/support/delinquent", testenv.AdminToken, nil).Status, "admin may do everything")
	require.Equal(t, 200, env.Do("GET", "/v1/support/audit", testenv.AdminToken, nil).Status)
	require.Equal(t, 404, env.Do("POST", "/v1/support/invoices/inv_nope/void", testenv.SupportToken, map[string]any{"reason": "x"}).Status)
	require.Equal(t, 404, env.Do("POST", "/v1/support/subscriptions/sub_nope/pause-dunning", testenv.SupportToken, map[string]any{"reason": "x"}).Status)
	require.Equal(t, 400, env.Do("POST", "/v1/support/invoices/inv_nope/void", testenv.SupportToken, map[string]any{"reason": "x", "why": "y"}).Status, "unknown fields")
}

// The audit log written through the API refuses to be rewritten through the service's own database
// connection, and an admin's actions are recorded with the admin's role.
func TestSupportAuditRowsCannotBeChanged(t *testing.T) {
	t.Parallel()
	b := setupSupport(t)
	env, d := b.env, b.delinquency
	res := env.Do("POST", "/v1/support/invoices/"+d.invoice+"/write-off", testenv.AdminToken, map[string]any{"reason": "admin cleanup"})
	require.Equal(t, 200, res.Status, string(res.Body))
	rows := auditRows(t, env, d.invoice)
	require.Len(t, rows, 1)
	require.Equal(t, "admin", rows[0]["role"])
	actor := rows[0]["actor"].(string)

	ctx := context.Background()
	for _, stmt := range []string{
		`UPDATE audit_log SET reason = 'nothing happened'`,
		`UPDATE audit_log SET actor = 'someone else'`,
		`DELETE FROM audit_log`,
		`TRUNCATE audit_log`,
		`ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only`,
	} {
		_, err := env.App.Pool.Exec(ctx, stmt)
		require.Error(t, err, stmt)
		require.Regexp(t, `permission denied for table audit_log|must be owner of table audit_log`, err.Error(), stmt)
	}
	require.Empty(t, env.App.RoleProblems, "billingd runs as a role that cannot rewrite its audit log")
	res = env.Do("GET", "/v1/support/audit?actor="+actor, testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status)
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	res.Decode(t, &list)
	require.Len(t, list.Data, 1)
	require.Contains(t, string(list.Data[0]), `"reason":"admin cleanup"`)
	env.RequireBalanced()
}

// A cancel by support through the subscriptions API is a support action like the others: a reason is
// required, the audit row is written with it, and a repeat changes nothing.
func TestSupportCancelIsAudited(t *testing.T) {
	t.Parallel()
	b := setupSupport(t)
	env, d := b.env, b.delinquency
	path := "/v1/subscriptions/" + d.sub + "/cancel"

	res := env.Do("POST", path, testenv.SupportToken, map[string]any{})
	require.Equal(t, 422, res.Status, "support must say why: %s", res.Body)
	require.Equal(t, "past_due", env.Subscription(d.sub)["status"])

	res = env.Do("POST", path, testenv.SupportToken, map[string]any{"reason": "customer asked by phone"}, "X-Request-Id: req-cancel")
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "canceled", res.JSON(t)["status"])
	row := requireAudit(t, env, "subscription", d.sub, "cancel", "customer asked by phone", "req-cancel")
	require.Equal(t, "past_due", row["before"].(map[string]any)["status"])
	require.Equal(t, "canceled", row["after"].(map[string]any)["status"])

	res = env.Do("POST", path, testenv.SupportToken, map[string]any{"reason": "customer asked by phone"})
	require.Equal(t, 200, res.Status, "canceling a canceled subscription again is a no-op: %s", res.Body)
	require.Len(t, auditRows(t, env, d.sub), 1)
	env.RequireBalanced()
}

// Every support action honors If-Match with its target's version: a stale ETag is 412 and changes nothing
// (no state, no audit row, no charge); the current one lets the action through.
func TestSupportActionsHonorIfMatch(t *testing.T) {
	t.Parallel()
	b := setupSupport(t)
	env, d := b.env, b.delinquency
	require.Equal(t, "past_due", env.Subscription(d.sub)["status"])
	post := func(path string, body map[string]any, ifMatch string) testenv.Response {
		return env.Do("POST", "/v1/support"+path, testenv.SupportToken, body, "If-Match: "+ifMatch)
	}
	stale := func(path string, body map[string]any, ifMatch string, version func() any) {
		t.Helper()
		before, charges := version(), len(env.ChargesAtGateway())
		res := post(path, body, ifMatch)
		require.Equal(t, 412, res.Status, "%s If-Match %s: %s", path, ifMatch, res.Body)
		require.Equal(t, "precondition_failed", res.JSON(t)["code"])
		require.Equal(t, before, version(), "%s: a refused action changes nothing", path)
		require.Len(t, env.ChargesAtGateway(), charges)
	}
	subVersion := func() any { return env.Subscription(d.sub)["version"] }
	invVersion := func() any {
		res := env.Do("GET", "/v1/invoices/"+d.invoice, testenv.SupportToken, nil)
		require.Equal(t, 200, res.Status)
		return res.JSON(t)["version"]
	}
	tag := func(v any) string { return fmt.Sprintf(`"%v"`, v) }
	until := d.failedAt.Add(12 * 24 * time.Hour) // past the 7-day grace

	// Subscription actions.
	subTag := tag(subVersion())
	staleSub := tag(subVersion().(float64) + 7)
	stale("/subscriptions/"+d.sub+"/extend-grace", map[string]any{"reason": "r", "until": until}, staleSub, subVersion)
	stale("/subscriptions/"+d.sub+"/pause-dunning", map[string]any{"reason": "r"}, staleSub, subVersion)
	res := post("/subscriptions/"+d.sub+"/pause-dunning", map[string]any{"reason": "ticket 7"}, subTag)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, true, res.JSON(t)["dunning"].(map[string]any)["paused"], string(res.Body))
	stale("/subscriptions/"+d.sub+"/resume-dunning", map[string]any{"reason": "r"}, subTag, subVersion)
	res = post("/subscriptions/"+d.sub+"/resume-dunning", map[string]any{"reason": "ticket 7"}, res.Header.Get("ETag"))
	require.Equal(t, 200, res.Status, string(res.Body))
	stale("/subscriptions/"+d.sub+"/extend-grace", map[string]any{"reason": "r", "until": until}, subTag, subVersion)
	res = post("/subscriptions/"+d.sub+"/extend-grace", map[string]any{"reason": "ticket 7", "until": until}, res.Header.Get("ETag"))
	require.Equal(t, 200, res.Status, string(res.Body))
	stale("/subscriptions/"+d.sub+"/pause-dunning", map[string]any{"reason": "r"}, `W/`+res.Header.Get("ETag"), subVersion)
	res = env.Do("POST", "/v1/subscriptions/"+d.sub+"/cancel", testenv.SupportToken, map[string]any{"reason": "r", "at_period_end": true}, "If-Match: "+subTag)
	require.Equal(t, 412, res.Status, "a support cancel honors If-Match too: %s", res.Body)
	require.Len(t, auditRows(t, env, d.sub), 3, "pause, resume, extend: the refused calls left no audit row")

	// Invoice actions.
	invTag := tag(invVersion())
	staleInv := tag(invVersion().(float64) + 7)
	stale("/invoices/"+d.invoice+"/retry", map[string]any{"reason": "r"}, staleInv, invVersion)
	stale("/invoices/"+d.invoice+"/write-off", map[string]any{"reason": "r"}, staleInv, invVersion)
	stale("/invoices/"+d.invoice+"/void", map[string]any{"reason": "r"}, staleInv, invVersion)
	stale("/invoices/"+d.invoice+"/mark-paid", map[string]any{"reason": "r", "reference": "t-1", "amount": "9900"}, staleInv, invVersion)
	require.Empty(t, auditRows(t, env, d.invoice))
	res = post("/invoices/"+d.invoice+"/mark-paid", map[string]any{"reason": "paid by transfer", "reference": "t-1", "amount": "9900"}, invTag)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "paid", res.JSON(t)["status"])
	require.Equal(t, "active", env.Subscription(d.sub)["status"])
	env.RequireBalanced()
}

// An admin's cancel is a person's action too: audited, with the reason given or a note that none was.
// The merchant backend's (service) cancels are its own business and are not audited.
func TestAdminCancelIsAudited(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	subscribe := func() string {
		res := env.Subscribe(env.Customer(pgsim.BehaviorOK), plan)
		require.Equal(t, 201, res.Status, string(res.Body))
		return res.JSON(t)["id"].(string)
	}
	bare, explained, byService := subscribe(), subscribe(), subscribe()

	res := env.Do("POST", "/v1/subscriptions/"+bare+"/cancel", testenv.AdminToken, nil, "X-Request-Id: req-admin-1")
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "canceled", res.JSON(t)["status"])
	rows := auditRows(t, env, bare)
	require.Len(t, rows, 1)
	require.Equal(t, "cancel", rows[0]["action"])
	require.Equal(t, "admin", rows[0]["role"])
	require.Regexp(t, `^bootstrap:admin:`, rows[0]["actor"])
	require.Equal(t, "no reason given (admin cancel)", rows[0]["reason"])
	require.Equal(t, "req-admin-1", rows[0]["request_id"])
	require.Equal(t, "active", rows[0]["before"].(map[string]any)["status"])

	res = env.Do("POST", "/v1/subscriptions/"+explained+"/cancel", testenv.AdminToken, map[string]any{"reason": "fraud review 12", "at_period_end": true})
	require.Equal(t, 200, res.Status, string(res.Body))
	rows = auditRows(t, env, explained)
	require.Len(t, rows, 1)
	require.Equal(t, "fraud review 12", rows[0]["reason"])

	res = env.Do("POST", "/v1/subscriptions/"+byService+"/cancel", testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Empty(t, auditRows(t, env, byService))
	env.RequireBalanced()
}
