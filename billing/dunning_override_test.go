package billing_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/audit"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/internal/apperr"
)

// supportActor is a support person acting through the API, as the audit log records them.
var supportActor = billing.Actor{ID: "key_support_1", Role: "support", RequestID: "req-override", Origin: audit.OriginAPI}

func setOverride(t *testing.T, env *testenv.Env, customerID, mode string, policy string, reason string) billing.CustomerDunning {
	t.Helper()
	in := billing.SetDunningOverrideRequest{Mode: mode, Reason: reason}
	if policy != "" {
		in.Policy = json.RawMessage(policy)
	}
	out, err := env.App.Billing.SetDunningOverride(context.Background(), supportActor, customerID, in)
	require.NoError(t, err)
	return out
}

func customerAttempts(env *testenv.Env, customerID string) int {
	return env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE customer_id = $1`, customerID)
}

// An exempt customer's renewal is charged once; the decline leaves the subscription past_due with dunning
// paused, and nothing else happens however far the clock goes: no retry, no suspension, no cancel, and the
// next renewal is invoiced but not charged. Lifting the exemption resumes: the held renewal is charged at
// once and the first invoice's retry comes as far after the lift as the policy had set it after the decline.
func TestExemptCustomerIsNeverDunnedAndLiftingResumes(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	d := subscribeFor(t, env, plan, pgsim.BehaviorInsufficient)

	view := setOverride(t, env, d.customer, billing.OverrideExempt, "", "hardship, ticket 4411")
	require.NotNil(t, view.Override)
	require.Equal(t, billing.OverrideExempt, view.Override.Mode)
	require.Equal(t, "key_support_1", view.Override.SetBy)
	require.Len(t, view.Subscriptions, 1)
	require.Equal(t, billing.PolicySourceCustomer, view.Subscriptions[0].PolicySource)
	require.True(t, view.Subscriptions[0].Exempt)
	require.Contains(t, view.Subscriptions[0].Why, "hardship, ticket 4411")

	advanceTo(t, env, d.failedAt)
	d = d.renewal(t, env)
	sub := env.Subscription(d.sub)
	require.Equal(t, "past_due", sub["status"])
	dn := sub["dunning"].(map[string]any)
	require.Equal(t, true, dn["paused"])
	require.Nil(t, dn["paused_until"])
	require.Equal(t, 2, customerAttempts(env, d.customer), "the first charge and the renewal's")

	// Far beyond the ladder, the grace period, the dunning window and the next renewal.
	advanceTo(t, env, d.failedAt.Add(40*day))
	require.Equal(t, "past_due", env.Subscription(d.sub)["status"])
	require.Equal(t, 2, customerAttempts(env, d.customer), "no charge of any kind while exempt")
	for _, typ := range []string{"subscription.suspended", "subscription.canceled", "subscription.unpaid"} {
		require.Zero(t, eventCount(env, d.sub, typ), typ)
	}
	invs := subInvoices(t, env, d.sub)
	require.Len(t, invs, 3, "the next renewal is invoiced")
	require.Equal(t, "open", invs[2]["status"])

	// Lift: audited, the pause the exemption made is resumed.
	lift := env.Now()
	view = setOverride(t, env, d.customer, billing.OverrideNone, "", "hardship over")
	require.Nil(t, view.Override)
	require.Equal(t, billing.PolicySourceDefault, view.Subscriptions[0].PolicySource)
	require.False(t, env.Subscription(d.sub)["dunning"].(map[string]any)["paused"].(bool))
	advanceTo(t, env, lift.Add(time.Minute))
	require.Equal(t, 3, customerAttempts(env, d.customer), "the held renewal is charged at the lift")
	advanceTo(t, env, lift.Add(3*day))
	times, statuses := attemptTimes(t, env, d.invoice)
	require.Equal(t, []string{"declined", "declined"}, statuses, "the first invoice is retried after the lift")
	require.True(t, times[1].After(lift), "retried at %s, lifted at %s", times[1], lift)
	require.Equal(t, "past_due", env.Subscription(d.sub)["status"])

	rows := auditRows(t, env, d.customer)
	require.Len(t, rows, 2)
	require.Equal(t, "set-dunning-override", rows[0]["action"])
	require.Equal(t, "hardship, ticket 4411", rows[0]["reason"])
	require.Equal(t, map[string]any{"mode": "none"}, rows[0]["before"])
	require.Equal(t, "exempt", rows[0]["after"].(map[string]any)["mode"])
	require.Equal(t, "hardship over", rows[1]["reason"])
	require.Equal(t, map[string]any{"mode": "none"}, rows[1]["after"])
	subRows := auditRows(t, env, d.sub)
	require.Len(t, subRows, 1, "the renewal failed after the exemption: only the lift's resume is a support action")
	require.Equal(t, "resume-dunning", subRows[0]["action"])
	require.Equal(t, "dunning exemption lifted: hardship over", subRows[0]["reason"])
	env.RequireBalanced()
}

// Exempting a customer who is already delinquent pauses their dunning (an audited pause-dunning); a pause
// support had set by hand is not the exemption's, and lifting the exemption leaves it.
func TestExemptingADelinquentCustomerPausesAndLiftingResumesOnlyItsOwnPauses(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	a := subscribeFor(t, env, plan, pgsim.BehaviorInsufficient)
	advanceTo(t, env, a.failedAt)
	a = a.renewal(t, env)
	require.Equal(t, "past_due", env.Subscription(a.sub)["status"])
	before := customerAttempts(env, a.customer)

	setOverride(t, env, a.customer, billing.OverrideExempt, "", "disputed charge")
	sub := env.Subscription(a.sub)
	require.True(t, sub["dunning"].(map[string]any)["paused"].(bool))
	rows := auditRows(t, env, a.sub)
	require.Len(t, rows, 1)
	require.Equal(t, "pause-dunning", rows[0]["action"])
	require.Equal(t, "dunning exemption: disputed charge", rows[0]["reason"])
	advanceTo(t, env, a.failedAt.Add(20*day))
	require.Equal(t, "past_due", env.Subscription(a.sub)["status"], "never suspended while exempt")
	require.Equal(t, before, customerAttempts(env, a.customer))

	// Support pauses by hand until a date: that pause is support's, not the exemption's.
	until := env.Now().Add(5 * day)
	_, err := env.App.Billing.PauseDunning(context.Background(), supportActor, a.sub, 0, &until, "promised to pay")
	require.NoError(t, err)
	setOverride(t, env, a.customer, billing.OverrideNone, "", "dispute settled")
	dn := env.Subscription(a.sub)["dunning"].(map[string]any)
	require.True(t, dn["paused"].(bool), "support's own pause stays")
	require.NotNil(t, dn["paused_until"])
	require.Len(t, auditRows(t, env, a.sub), 2, "no resume by the lift")
}

// A customer's own policy is the one dunning follows: its ladder times the retries and its window ends
// them (a retry every two days, two of them, then cancel), not the default's (+1d, +2d, ...).
func TestCustomerPolicyLadderIsTheOneUsed(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	d := subscribeFor(t, env, plan, pgsim.BehaviorInsufficient)
	policy := `{"retry_base": "2d", "retry_factor": 1, "max_retries": 2, "jitter_percent": 0, "retry_hour": null,
		"quiet_hours": {"from": "00:00", "to": "00:00"}, "maintenance_windows": [], "rules": [],
		"grace_period": "3d", "dunning_window": "10d"}`
	view := setOverride(t, env, d.customer, billing.OverridePolicy, policy, "enterprise terms")
	require.Equal(t, billing.PolicySourceCustomer, view.Subscriptions[0].PolicySource)
	require.False(t, view.Subscriptions[0].Exempt)
	require.Equal(t, 2, view.Subscriptions[0].Policy.MaxRetries)
	require.JSONEq(t, policy, string(view.Override.Policy))

	advanceTo(t, env, d.failedAt.Add(5*day))
	d = d.renewal(t, env)
	times, statuses := attemptTimes(t, env, d.invoice)
	require.Equal(t, []string{"declined", "declined", "declined"}, statuses)
	require.Equal(t, []time.Time{d.failedAt, d.failedAt.Add(2 * day), d.failedAt.Add(4 * day)}, utc(times))
	sub := env.Subscription(d.sub)
	require.Equal(t, "canceled", sub["status"], "retries exhausted: the final action")
	require.Equal(t, 1, eventCount(env, d.sub, "subscription.suspended"), "grace (3d) ended before the last retry")
	env.RequireBalanced()
}

func utc(ts []time.Time) []time.Time {
	out := make([]time.Time, len(ts))
	for i, t := range ts {
		out[i] = t.UTC()
	}
	return out
}

// A customer policy is read like BILLING_DUNNING_POLICY: unknown keys and every rule it breaks are
// refused together (422), over the plan's policy too; nothing is stored or audited. Setting what is set
// is a no-op; a reason is required; an unknown customer is not found.
func TestCustomerPolicyIsValidatedAndChangesAreIdempotent(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	d := subscribeFor(t, env, plan, pgsim.BehaviorOK)
	svc := env.App.Billing

	_, err := svc.SetDunningOverride(ctx, supportActor, d.customer, billing.SetDunningOverrideRequest{Mode: billing.OverridePolicy,
		Policy: json.RawMessage(`{"retries": 3, "max_retries": 99, "grace_period": "20d"}`), Reason: "r"})
	e, ok := apperr.As(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, apperr.KindValidation, e.Kind)
	var problems []string
	for _, f := range e.Fields {
		require.Equal(t, "policy", f.Field)
		problems = append(problems, f.Message)
	}
	require.Len(t, problems, 3, "%v", problems)
	require.Contains(t, problems[0], `unknown key "retries"`)
	require.Contains(t, problems[1], "max_retries must be from 0 to 30")
	require.Contains(t, problems[2], "dunning_window must be at least grace_period")

	for _, in := range []billing.SetDunningOverrideRequest{
		{Mode: "sometimes", Reason: "r"},
		{Mode: billing.OverridePolicy, Reason: "r"},
		{Mode: billing.OverridePolicy, Policy: json.RawMessage(`[1]`), Reason: "r"},
		{Mode: billing.OverrideExempt, Policy: json.RawMessage(`{"max_retries": 1}`), Reason: "r"},
		{Mode: billing.OverrideExempt, Reason: "  "},
	} {
		_, err := svc.SetDunningOverride(ctx, supportActor, d.customer, in)
		require.True(t, apperr.IsKind(err, apperr.KindValidation), "%+v: %v", in, err)
	}
	_, err = svc.SetDunningOverride(ctx, supportActor, "cus_missing", billing.SetDunningOverrideRequest{Mode: billing.OverrideExempt, Reason: "r"})
	require.True(t, apperr.IsKind(err, apperr.KindNotFound), "%v", err)
	_, err = svc.GetCustomerDunning(ctx, "cus_missing")
	require.True(t, apperr.IsKind(err, apperr.KindNotFound), "%v", err)
	require.Empty(t, auditRows(t, env, d.customer))

	setOverride(t, env, d.customer, billing.OverridePolicy, `{"max_retries": 1}`, "first")
	setOverride(t, env, d.customer, billing.OverridePolicy, `{ "max_retries" : 1 }`, "again")
	setOverride(t, env, d.customer, billing.OverrideNone, "", "lift")
	setOverride(t, env, d.customer, billing.OverrideNone, "", "lift again")
	rows := auditRows(t, env, d.customer)
	require.Len(t, rows, 2, "repeats change nothing and write no audit row")
	view, err := svc.GetCustomerDunning(ctx, d.customer)
	require.NoError(t, err)
	require.Nil(t, view.Override)
	require.Equal(t, billing.PolicySourceDefault, view.Subscriptions[0].PolicySource)
}
