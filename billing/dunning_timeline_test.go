package billing_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

const day = 24 * time.Hour

// clockNow reads the test clock.
func clockNow(t *testing.T, env *testenv.Env) time.Time {
	t.Helper()
	res := env.Do("GET", "/v1/test-clock", testenv.AdminToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	var c struct {
		Now time.Time `json:"now"`
	}
	res.Decode(t, &c)
	return c.Now
}

// advanceTo moves the test clock to at, stepping through everything due on the way.
func advanceTo(t *testing.T, env *testenv.Env, at time.Time) {
	t.Helper()
	res := env.Do("POST", "/v1/test-clock/advance", testenv.AdminToken, map[string]any{"to": at.UTC().Format(time.RFC3339Nano)})
	require.Equal(t, 200, res.Status, string(res.Body))
}

// subInvoices returns a subscription's invoices, oldest period first.
func subInvoices(t *testing.T, env *testenv.Env, subID string) []map[string]any {
	t.Helper()
	res := env.Do("GET", "/v1/invoices?limit=500&subscription_id="+subID, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	var out []map[string]any
	for _, d := range res.JSON(t)["data"].([]any) {
		out = append(out, d.(map[string]any))
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["period_start"].(string) < out[j]["period_start"].(string) })
	return out
}

func invoice(t *testing.T, env *testenv.Env, id string) map[string]any {
	t.Helper()
	res := env.Do("GET", "/v1/invoices/"+id, testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	return res.JSON(t)
}

// attemptTimes lists an invoice's attempts that reached the card (declined or succeeded) by creation time.
func attemptTimes(t *testing.T, env *testenv.Env, invoiceID string) (times []time.Time, statuses []string) {
	t.Helper()
	for _, a := range invoice(t, env, invoiceID)["attempts"].([]any) {
		m := a.(map[string]any)
		st := m["status"].(string)
		if st != "declined" && st != "succeeded" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m["created_at"].(string))
		require.NoError(t, err)
		times = append(times, at)
		statuses = append(statuses, st)
	}
	return times, statuses
}

func eventCount(env *testenv.Env, subID, typ string) int {
	return env.QueryInt(`SELECT count(*) FROM events WHERE subscription_id = $1 AND type = $2`, subID, typ)
}

// delinquency is a subscription whose renewal was just declined.
type delinquency struct {
	customer, sub, invoice string
	failedAt               time.Time // the renewal's first failure
}

// timelineBundle is where most timeline tests start: a whole app (the test clock walks the dunning
// timeline) and a monthly 9,900 KRW subscription that has just renewed with the card behaving as asked.
type timelineBundle struct {
	env  *testenv.Env
	plan string
	delinquency
}

// fixedStart is the one instant the KST timelines start at (see setupTimeline).
var fixedStart = testenv.Options{Env: map[string]string{"BILLING_TEST_CLOCK_START": testenv.DefaultClockStart.Format(time.RFC3339)}}

// setupTimeline starts a timeline bundle. The timelines assert KST dates and hours (a renewal at 00:00 KST on 1 March, retries at 10:00 the days
// after), so they start at one fixed instant whatever TEST_CLOCK_START the run chose: the calendar runs
// (make test-calendar) move the other tests, not these.
func setupTimeline(t *testing.T, behavior string) *timelineBundle {
	t.Helper()
	env := testenv.New(t, fixedStart)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	return &timelineBundle{env: env, plan: plan, delinquency: renewWith(t, env, plan, behavior)}
}

// renewWith subscribes a customer whose card works, then switches the card to behavior and advances to
// the renewal: the first invoice is paid, the renewal meets the new behavior.
func renewWith(t *testing.T, env *testenv.Env, plan, behavior string) delinquency {
	t.Helper()
	d := subscribeFor(t, env, plan, behavior)
	advanceTo(t, env, d.failedAt)
	return d.renewal(t, env)
}

// subscribeFor is renewWith without the advance: several subscriptions can then renew in one advance.
func subscribeFor(t *testing.T, env *testenv.Env, plan, behavior string) delinquency {
	t.Helper()
	cus := env.Customer(pgsim.BehaviorOK)
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub := res.JSON(t)
	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+cus, behavior))
	renewal, err := time.Parse(time.RFC3339Nano, sub["next_renewal_at"].(string))
	require.NoError(t, err)
	return delinquency{customer: cus, sub: sub["id"].(string), failedAt: renewal}
}

// renewal fills in the renewal invoice once the clock has passed the renewal.
func (d delinquency) renewal(t *testing.T, env *testenv.Env) delinquency {
	t.Helper()
	invs := subInvoices(t, env, d.sub)
	require.Len(t, invs, 2)
	d.invoice = invs[1]["id"].(string)
	return d
}

func TestTimelineOKCardStaysActiveFor40Days(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "week", 1)
	d := renewWith(t, env, plan, pgsim.BehaviorOK)
	start := clockNow(t, env)
	advanceTo(t, env, start.Add(40*day))

	sub := env.Subscription(d.sub)
	require.Equal(t, "active", sub["status"])
	require.Equal(t, true, sub["entitled"])
	for _, inv := range subInvoices(t, env, d.sub) {
		require.Equal(t, "paid", inv["status"], inv["id"])
	}
	require.Len(t, subInvoices(t, env, d.sub), 7, "the first week and a renewal every 7 days: days 7 to 42")
	require.Zero(t, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status <> 'succeeded'`))
	require.Zero(t, eventCount(env, d.sub, "subscription.past_due"))
	env.RequireBalanced()
}

func TestTimelineFlakyCardRecoversOnTheSecondRetry(t *testing.T) {
	t.Parallel()
	b := setupTimeline(t, "flaky-2")
	env, d := b.env, b.delinquency
	require.Equal(t, "past_due", env.Subscription(d.sub)["status"])

	advanceTo(t, env, d.failedAt.Add(40*day))
	times, statuses := attemptTimes(t, env, d.invoice)
	require.Equal(t, []string{"declined", "declined", "succeeded"}, statuses)
	// The renewal is at 00:00 KST on 1 March; +1d and +2d at 10:00 KST.
	requireKSTRetries(t, d.failedAt, times, "2027-03-02", "2027-03-04")
	require.Equal(t, "paid", invoice(t, env, d.invoice)["status"])
	sub := env.Subscription(d.sub)
	require.Equal(t, "active", sub["status"])
	require.Nil(t, sub["dunning"].(map[string]any)["grace_ends_at"])
	require.Equal(t, 1, eventCount(env, d.sub, "subscription.recovered"))
	require.Zero(t, eventCount(env, d.sub, "subscription.suspended"), "recovered on day 3, inside the 7-day grace")
	env.RequireBalanced()
}

var kst = time.FixedZone("KST", 9*60*60)

// requireKSTRetries checks the first attempt is the renewal at start and each later one went out on its
// expected KST date (day of the month in start's month or the next) in the default policy's retry hour,
// 10:00-11:00 KST.
func requireKSTRetries(t *testing.T, start time.Time, times []time.Time, dates ...string) {
	t.Helper()
	require.Len(t, times, len(dates)+1)
	require.WithinDuration(t, start, times[0], time.Minute, "the renewal itself")
	for i, at := range times[1:] {
		local := at.In(kst)
		require.Equal(t, dates[i], local.Format(time.DateOnly), "retry %d at %s", i+1, local)
		require.Equal(t, 10, local.Hour(), "retry %d at %s: the policy's hour", i+1, local)
	}
}

// requireDaysAfter checks each time is its expected number of days after start, within the default
// policy's ±10 % jitter of the delay since the attempt before.
func requireDaysAfter(t *testing.T, start time.Time, times []time.Time, days ...int) {
	t.Helper()
	require.Len(t, times, len(days))
	for i, at := range times {
		want := start.Add(time.Duration(days[i]) * day)
		// Each delay moves by up to ±10 %, and the moves add up: at most a tenth of the days so far.
		slack := time.Minute + time.Duration(days[i])*day/10
		require.WithinDuration(t, want, at, slack, "attempt %d at %s, want day %d", i+1, at, days[i])
	}
	for i := 2; i < len(times); i++ {
		require.Greater(t, times[i].Sub(times[i-1]), times[i-1].Sub(times[i-2]), "the backoff grows")
	}
}

func TestTimelineInsufficientFundsBacksOffThenCancels(t *testing.T) {
	t.Parallel()
	b := setupTimeline(t, pgsim.BehaviorInsufficient)
	env, d := b.env, b.delinquency

	advanceTo(t, env, d.failedAt.Add(6*day))
	sub := env.Subscription(d.sub)
	require.Equal(t, "past_due", sub["status"])
	require.Equal(t, true, sub["entitled"], "grace: service stays on")

	advanceTo(t, env, d.failedAt.Add(8*day))
	sub = env.Subscription(d.sub)
	require.Equal(t, "suspended", sub["status"], "grace ended on day 7")
	require.Equal(t, false, sub["entitled"])

	advanceTo(t, env, d.failedAt.Add(40*day))
	times, statuses := attemptTimes(t, env, d.invoice)
	require.Equal(t, []string{"declined", "declined", "declined", "declined", "declined"}, statuses)
	// +1d, +2d at 10:00 KST; +4d would be the 8th, but payday (the 10th) is within three days of it;
	// +8d from the 10th is the 18th. The dunning window (15 days) waits for that last retry.
	requireKSTRetries(t, d.failedAt, times, "2027-03-02", "2027-03-04", "2027-03-10", "2027-03-18")

	sub = env.Subscription(d.sub)
	require.Equal(t, "canceled", sub["status"], "the default final action")
	require.Equal(t, "uncollectible", invoice(t, env, d.invoice)["status"])
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM ledger_transactions WHERE kind = 'write_off' AND reference = $1`, d.invoice))
	require.Equal(t, 9900, env.QueryInt(`SELECT sum(amount)::int FROM ledger_entries WHERE account = 'bad_debt'`))
	require.Equal(t, 2, len(subInvoices(t, env, d.sub)), "a canceled subscription does not renew")
	for _, typ := range []string{"subscription.past_due", "subscription.suspended", "subscription.canceled", "invoice.uncollectible"} {
		require.Equal(t, 1, eventCount(env, d.sub, typ), typ)
	}
	env.RequireBalanced()
}

func TestTimelineUnpaidFinalActionByPlanOverride(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, fixedStart)
	res := env.Do("POST", "/v1/plans", testenv.AdminToken, map[string]any{"code": "unpaid-plan", "name": "Keeps its customers",
		"amount": "12.00", "currency": "USD", "interval": "month", "interval_count": 1,
		"dunning_policy": map[string]any{"final_action": "unpaid", "max_retries": 2}})
	require.Equal(t, 201, res.Status, string(res.Body))
	d := renewWith(t, env, res.JSON(t)["id"].(string), pgsim.BehaviorInsufficient)

	advanceTo(t, env, d.failedAt.Add(40*day))
	times, _ := attemptTimes(t, env, d.invoice)
	requireKSTRetries(t, d.failedAt, times, "2027-03-02", "2027-03-04")
	sub := env.Subscription(d.sub)
	require.Equal(t, "unpaid", sub["status"], "the plan's final action")
	require.Equal(t, false, sub["entitled"])
	require.Equal(t, "uncollectible", invoice(t, env, d.invoice)["status"])
	require.Equal(t, 1200, env.QueryInt(`SELECT (sum(amount) * 100)::int FROM ledger_entries WHERE account = 'bad_debt'`))
	env.RequireBalanced()
}

func TestTimelineStolenCardIsTriedOncePerInvoice(t *testing.T) {
	t.Parallel()
	b := setupTimeline(t, pgsim.BehaviorStolen)
	env, d := b.env, b.delinquency

	advanceTo(t, env, d.failedAt.Add(40*day))
	times, statuses := attemptTimes(t, env, d.invoice)
	require.Equal(t, []string{"declined"}, statuses, "a hard decline is never retried on the same card")
	requireDaysAfter(t, d.failedAt, times, 0)
	require.Equal(t, "hard", invoice(t, env, d.invoice)["attempts"].([]any)[0].(map[string]any)["decline_class"])
	require.Equal(t, "canceled", env.Subscription(d.sub)["status"], "the dunning window (15 days) ran out with no new key")
	require.Equal(t, "uncollectible", invoice(t, env, d.invoice)["status"])
	require.Equal(t, 1, eventCount(env, d.sub, "subscription.suspended"))
	env.RequireBalanced()
}

func TestTimelineStolenCardHealsWithANewKey(t *testing.T) {
	t.Parallel()
	b := setupTimeline(t, pgsim.BehaviorStolen)
	env, d := b.env, b.delinquency

	advanceTo(t, env, d.failedAt.Add(9*day))
	require.Equal(t, "suspended", env.Subscription(d.sub)["status"])
	_, statuses := attemptTimes(t, env, d.invoice)
	require.Equal(t, []string{"declined"}, statuses)

	env.AddKey(d.customer, pgsim.BehaviorOK) // the customer registers a new card: charged right away
	advanceTo(t, env, clockNow(t, env).Add(time.Minute))
	_, statuses = attemptTimes(t, env, d.invoice)
	require.Equal(t, []string{"declined", "succeeded"}, statuses)
	require.Equal(t, "paid", invoice(t, env, d.invoice)["status"])
	require.Equal(t, "active", env.Subscription(d.sub)["status"])

	advanceTo(t, env, d.failedAt.Add(40*day))
	require.Equal(t, "active", env.Subscription(d.sub)["status"], "the next renewal charges the new card")
	for _, inv := range subInvoices(t, env, d.sub) {
		require.Equal(t, "paid", inv["status"])
	}
	env.RequireBalanced()
}

// A gateway outage is not the customer's fault: the retry it swallowed is made again on the technical
// backoff without counting, and the dunning schedule goes on as if the outage had not happened.
func TestTimelineOutageDuringDunningDoesNotConsumeRetries(t *testing.T) {
	t.Parallel()
	b := setupTimeline(t, pgsim.BehaviorInsufficient)
	env, d := b.env, b.delinquency
	next, err := time.Parse(time.RFC3339Nano, env.Subscription(d.sub)["dunning"].(map[string]any)["next_attempt_at"].(string))
	require.NoError(t, err)
	require.Equal(t, "2027-03-02 10", next.In(kst).Format("2006-01-02 15"), "the next day at the policy's hour, 10:00 KST")

	env.Sim().SetFaults(pgsim.Faults{Outage: &pgsim.OutageFault{}})
	advanceTo(t, env, next.Add(30*time.Minute)) // the first retry, and its technical retries, meet the outage
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1 AND status = 'declined'`, d.invoice))
	require.Equal(t, 1, int(env.Subscription(d.sub)["dunning"].(map[string]any)["attempts"].(float64)), "the retry count stays")

	env.Sim().ClearFaults()
	advanceTo(t, env, d.failedAt.Add(40*day))
	times, statuses := attemptTimes(t, env, d.invoice)
	require.Len(t, statuses, 5, "still five attempts at the card in all")
	require.WithinDuration(t, next, times[1], 2*time.Hour, "the swallowed retry is made once the gateway is back")
	require.Equal(t, "canceled", env.Subscription(d.sub)["status"])
	// The outage did meet the retry: as unknown outcomes or deferred sends, never as declines.
	require.Positive(t, env.QueryInt(`SELECT count(*) FROM events WHERE invoice_id = $1 AND type IN ('payment.unknown', 'payment.deferred')`, d.invoice))
	env.RequireBalanced()
}

// The service-wide policy comes from BILLING_DUNNING_POLICY: here the classic ladder, without a retry hour
// or per-code rules.
func TestTimelineFollowsThePolicyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("max_retries: 1\nretry_base: 2d\njitter_percent: 0\ngrace_period: 1d\ndunning_window: 3d\nretry_hour: null\nrules: []\nquiet_hours: {from: \"00:00\", to: \"00:00\"}\nmaintenance_windows: []\n"), 0o600))
	env := testenv.New(t, testenv.Options{Env: map[string]string{"BILLING_DUNNING_POLICY": path}})
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	d := renewWith(t, env, plan, pgsim.BehaviorInsufficient)

	advanceTo(t, env, d.failedAt.Add(10*day))
	times, _ := attemptTimes(t, env, d.invoice)
	requireDaysAfter(t, d.failedAt, times, 0, 2)
	require.Equal(t, "canceled", env.Subscription(d.sub)["status"])
	var canceledAt time.Time
	require.NoError(t, env.App.Pool.QueryRow(context.Background(), `SELECT canceled_at FROM subscriptions WHERE id = $1`, d.sub).Scan(&canceledAt))
	require.WithinDuration(t, d.failedAt.Add(2*day), canceledAt, time.Minute, "one retry, then the final action")
	env.RequireBalanced()
}
