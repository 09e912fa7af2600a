package api_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// analyticsHistory is a generated history with known answers, made through the real service: four monthly
// KRW 9900 subscriptions; at the first renewal one card pays (ok), one declines twice and then pays
// (flaky-2: recovered on its third charge), one never pays again (insufficient: soft declines until the
// dunning window ends and the subscription is canceled), one is stopped (stolen: a hard decline, canceled
// when the window ends). The clock stops 20 days after the renewal: past the 15-day window, before the
// next renewal.
type analyticsHistory struct {
	env           *testenv.Env
	from, to      time.Time
	renewal       time.Time
	ok, recovered string
}

func setupAnalytics(t *testing.T) analyticsHistory {
	t.Helper()
	env := testenv.New(t)
	start := env.Now()
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	h := analyticsHistory{env: env}
	var subs []string
	for _, behavior := range []string{pgsim.BehaviorOK, "flaky-2", pgsim.BehaviorInsufficient, pgsim.BehaviorStolen} {
		cus := env.Customer(pgsim.BehaviorOK)
		res := env.Subscribe(cus, plan)
		require.Equal(t, 201, res.Status, string(res.Body))
		subs = append(subs, res.JSON(t)["id"].(string))
		require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+cus, behavior))
	}
	h.ok, h.recovered = subs[0], subs[1]
	h.renewal = env.RenewalAt(subs[0])
	h.from, h.to = start.Add(time.Hour), h.renewal.Add(20*24*time.Hour)
	env.AdvanceTo(h.to)
	require.Equal(t, "active", env.Subscription(subs[1])["status"])
	require.Equal(t, "canceled", env.Subscription(subs[2])["status"])
	require.Equal(t, "canceled", env.Subscription(subs[3])["status"])
	return h
}

func (h analyticsHistory) query(interval string) string {
	return url.Values{"from": {h.from.Format(time.RFC3339)}, "to": {h.to.Format(time.RFC3339)}, "interval": {interval}}.Encode()
}

func TestAnalyticsOnAGeneratedHistory(t *testing.T) {
	t.Parallel()
	h := setupAnalytics(t)
	env := h.env

	res := env.Do("GET", "/v1/analytics/recovery?"+h.query("week"), testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	var rec billing.RecoveryReport
	res.Decode(t, &rec)
	require.Equal(t, "week", rec.Interval)
	require.Len(t, rec.Currencies, 1)
	krw := rec.Currencies[0]
	require.Equal(t, "KRW", krw.Currency)
	// Three renewals failed at first (flaky-2, insufficient, stolen); one came back, two were written off.
	require.Equal(t, 3, krw.AtRiskInvoices)
	require.Equal(t, 1, krw.RecoveredInvoices)
	require.Equal(t, 2, krw.LostInvoices)
	require.Zero(t, krw.OpenInvoices)
	require.Zero(t, krw.WaivedInvoices)
	require.InDelta(t, 0.3333, *krw.RecoveryRate, 1e-9)
	require.Equal(t, "29700", krw.AtRiskAmount)
	require.Equal(t, "9900", krw.RecoveredAmount)
	require.Equal(t, "19800", krw.LostAmount)
	require.Zero(t, krw.RecoveredWithoutCharge)

	// Over time: every at-risk invoice is in the week of the renewal, and the series adds up.
	sum := 0
	for _, p := range krw.Series {
		sum += p.AtRiskInvoices
		if !h.renewal.Before(p.Start) && h.renewal.Before(p.End) {
			require.Equal(t, 3, p.AtRiskInvoices, "the renewal's week")
			require.Equal(t, "29700", p.AtRiskAmount)
		} else {
			require.Zero(t, p.AtRiskInvoices)
			require.Nil(t, p.RecoveryRate, "no rate where nothing was at risk")
		}
	}
	require.Equal(t, 3, sum)
	require.Equal(t, rec.Periods[0].Start, h.from.UTC(), "the first week is clipped to from")
	require.Equal(t, rec.Periods[len(rec.Periods)-1].End, h.to.UTC())

	// By decline code: flaky-2 and insufficient decline with REJECT_CARD_PAYMENT (soft), stolen with
	// INVALID_STOPPED_CARD (hard).
	require.Len(t, krw.ByDeclineCode, 2)
	soft, hard := krw.ByDeclineCode[0], krw.ByDeclineCode[1]
	require.Equal(t, "REJECT_CARD_PAYMENT", soft.DeclineCode)
	require.Equal(t, "soft", *soft.DeclineClass)
	require.Equal(t, 2, soft.AtRiskInvoices)
	require.Equal(t, 1, soft.RecoveredInvoices)
	require.InDelta(t, 0.5, *soft.RecoveryRate, 1e-9)
	require.Equal(t, "INVALID_STOPPED_CARD", hard.DeclineCode)
	require.Equal(t, "hard", *hard.DeclineClass)
	require.Equal(t, 1, hard.AtRiskInvoices)
	require.Zero(t, hard.RecoveredInvoices)

	// By attempt: three first charges failed; the hard-declined card was never retried; flaky-2's third
	// charge is the one success.
	require.GreaterOrEqual(t, len(krw.ByAttempt), 3)
	require.Equal(t, billing.AttemptRecovery{Attempt: 1, Charges: 3, Succeeded: 0, SuccessRate: ptr(0.0), RecoveredAmount: "0"}, krw.ByAttempt[0])
	require.Equal(t, billing.AttemptRecovery{Attempt: 2, Charges: 2, Succeeded: 0, SuccessRate: ptr(0.0), RecoveredAmount: "0"}, krw.ByAttempt[1])
	require.Equal(t, billing.AttemptRecovery{Attempt: 3, Charges: 2, Succeeded: 1, SuccessRate: ptr(0.5), RecoveredAmount: "9900"}, krw.ByAttempt[2])
	for _, a := range krw.ByAttempt[3:] {
		require.Equal(t, 1, a.Charges, "only the insufficient card is retried past the third charge")
		require.Zero(t, a.Succeeded)
	}

	res = env.Do("GET", "/v1/analytics/revenue?"+h.query("week"), testenv.AdminToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	var rev billing.RevenueReport
	res.Decode(t, &rev)
	require.Len(t, rev.Currencies, 1)
	kr := rev.Currencies[0]
	require.Equal(t, "29700", kr.AtRiskAmount)
	require.Equal(t, "9900", kr.RecoveredAmount)
	// MRR: four subscriptions at 9900 a month at the start; the two that dunning canceled are gone at the end.
	first, last := kr.Series[0], kr.Series[len(kr.Series)-1]
	require.Equal(t, "39600", first.MRRAtStart)
	require.Equal(t, 4, first.SubscribersAtStart)
	require.Equal(t, "19800", last.MRR)
	require.Equal(t, 2, last.SubscribersAtEnd)
	require.Equal(t, "19800", kr.MRR)
	require.Equal(t, 2, kr.Subscribers)
	// Involuntary churn: two final actions (cancel, the default) over four subscribers at the start.
	require.Equal(t, 2, kr.Churned)
	require.InDelta(t, 0.5, *kr.ChurnRate, 1e-9)
	churned, canceled := 0, 0
	for i, p := range kr.Series {
		churned += p.Churned
		canceled += p.ChurnedCanceled
		require.Zero(t, p.ChurnedUnpaid)
		if i > 0 {
			require.Equal(t, kr.Series[i-1].MRR, p.MRRAtStart, "a period starts where the last ended")
		}
		if p.Churned > 0 {
			require.Equal(t, 4, p.SubscribersAtStart)
			require.InDelta(t, float64(p.Churned)/4, *p.ChurnRate, 1e-4)
		}
	}
	require.Equal(t, 2, churned)
	require.Equal(t, 2, canceled)

	// A currency with no history answers an empty list; a month interval sums to the same totals.
	res = env.Do("GET", "/v1/analytics/revenue?"+h.query("month")+"&currency=USD", testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Empty(t, res.JSON(t)["currencies"])
	res = env.Do("GET", "/v1/analytics/recovery?"+h.query("day"), testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	var daily billing.RecoveryReport
	res.Decode(t, &daily)
	require.Equal(t, krw.RecoveryTally, daily.Currencies[0].RecoveryTally)
}

func ptr[T any](v T) *T { return &v }

func TestAnalyticsRolesAndParameters(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	for _, path := range []string{"/v1/analytics/recovery", "/v1/analytics/revenue"} {
		require.Equal(t, 401, env.Do("GET", path, "", nil).Status)
		require.Equal(t, 403, env.Do("GET", path, testenv.ServiceToken, nil).Status)
		for _, tok := range []string{testenv.SupportToken, testenv.AdminToken} {
			res := env.Do("GET", path, tok, nil)
			require.Equal(t, 200, res.Status, string(res.Body))
			// The defaults: the 90 days before now, by week.
			body := res.JSON(t)
			require.Equal(t, "week", body["interval"])
			from, _ := time.Parse(time.RFC3339, body["from"].(string))
			to, _ := time.Parse(time.RFC3339, body["to"].(string))
			require.Equal(t, env.Now(), to)
			require.Equal(t, 90*24*time.Hour, to.Sub(from))
		}
		for q, field := range map[string]string{
			"from=yesterday":          "from",
			"to=2027-13-01T00:00:00Z": "to",
			"interval=year":           "interval",
			"currency=XXX":            "currency",
			"from=2027-03-01T00:00:00Z&to=2027-02-01T00:00:00Z": "from",
			"from=2020-01-01T00:00:00Z&interval=day":            "interval",
		} {
			res := env.Do("GET", path+"?"+q, testenv.SupportToken, nil)
			require.Equal(t, 422, res.Status, q)
			require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
			p := res.JSON(t)
			require.Equal(t, "validation_failed", p["code"], q)
			require.Equal(t, field, p["errors"].([]any)[0].(map[string]any)["field"], q)
		}
	}
}
