package simulate_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/dunning"
	"github.com/dunningworks/billing/dunning/simulate"
)

const day = 24 * time.Hour

var start = time.Date(2027, 1, 4, 3, 0, 0, 0, time.UTC)

// classic is a policy without calendar rules: retries at whole-day delays from the decline.
func classic(base dunning.Duration, factor, retries int) dunning.Policy {
	p := dunning.DefaultPolicy()
	p.RetryBase, p.RetryFactor, p.MaxRetries, p.JitterPercent = base, factor, retries, 0
	p.RetryHour, p.Rules, p.QuietHours, p.MaintenanceWindows, p.BackupCard = nil, nil, dunning.DailyWindow{}, nil, nil
	return p
}

// truth is one generated customer: when their card would start working again (in days after the first
// failure; negative: never), whether the first decline was hard, and when money came from elsewhere.
type truth struct {
	healDay      float64
	hard         bool
	elsewhereDay float64 // 0: never
	amount       int64
}

// generate makes n truths with a fixed seed, and the history the current policy (retries on days 1, 3,
// 7 and 15) records for them.
func generate(n int) ([]truth, []simulate.Episode) {
	rnd := rand.New(rand.NewPCG(19, 2027))
	ladder := []float64{0, 1, 3, 7, 15}
	var truths []truth
	var eps []simulate.Episode
	for i := range n {
		tr := truth{healDay: float64(1+rnd.IntN(39)) / 2, amount: int64(1000 * (1 + rnd.IntN(9)))}
		switch rnd.IntN(10) {
		case 0:
			tr.hard = true
		case 1:
			tr.healDay = -1
		case 2:
			tr.elsewhereDay = 2.5
		}
		first := start.Add(time.Duration(i) * time.Hour)
		e := simulate.Episode{InvoiceID: fmt.Sprintf("inv_%d", i), CustomerID: fmt.Sprintf("cus_%d", i/2),
			Amount: decimal.NewFromInt(tr.amount), Currency: "KRW"}
		if tr.elsewhereDay > 0 {
			at := first.Add(time.Duration(tr.elsewhereDay * float64(day)))
			e.PaidElsewhereAt = &at
		}
		for k, d := range ladder {
			at := first.Add(time.Duration(d * float64(day)))
			if tr.elsewhereDay > 0 && d > tr.elsewhereDay {
				e.Recorded = simulate.Outcome{Recovered: true, RecoveredAt: *e.PaidElsewhereAt, Charges: len(e.Charges)}
				break
			}
			if !tr.hard && tr.healDay >= 0 && d >= tr.healDay {
				e.Charges = append(e.Charges, simulate.Charge{At: at, Succeeded: true})
				e.Recorded = simulate.Outcome{Recovered: true, RecoveredAt: at, Charges: len(e.Charges)}
				break
			}
			e.Charges = append(e.Charges, simulate.Charge{At: at, Code: "REJECT_CARD_PAYMENT", Hard: tr.hard})
			if tr.hard || k == len(ladder)-1 {
				e.Recorded = simulate.Outcome{Canceled: true, Charges: len(e.Charges)}
				break
			}
		}
		truths = append(truths, tr)
		eps = append(eps, e)
	}
	return truths, eps
}

// expectDaily computes, without the simulator, what daily retries (days 1..15) recover on the history,
// under the documented model: a card heals halfway between its last recorded decline and its success.
func expectDaily(truths []truth, eps []simulate.Episode) (recovered, charges, canceled int, revenue int64, meanDays float64) {
	customersCanceled := map[string]bool{}
	var days float64
	for i, tr := range truths {
		e := eps[i]
		first := e.Charges[0].At
		healed := -1.0 // the model's heal day
		for k, c := range e.Charges {
			if c.Succeeded {
				prev := e.Charges[k-1].At.Sub(first).Hours() / 24
				healed = (prev + c.At.Sub(first).Hours()/24) / 2
			}
		}
		charges++ // the first failure
		if tr.hard {
			if tr.elsewhereDay > 0 {
				recovered++
				revenue += tr.amount
				days += tr.elsewhereDay
			} else {
				customersCanceled[e.CustomerID] = true
			}
			continue
		}
		done := false
		for k := 1; k <= 15 && !done; k++ {
			if tr.elsewhereDay > 0 && tr.elsewhereDay <= float64(k) {
				recovered++
				revenue += tr.amount
				days += tr.elsewhereDay
				done = true
				break
			}
			charges++
			if healed >= 0 && float64(k) >= healed {
				recovered++
				revenue += tr.amount
				days += float64(k)
				done = true
			}
		}
		if !done {
			customersCanceled[e.CustomerID] = true
		}
	}
	return recovered, charges, len(customersCanceled), revenue, days / float64(recovered)
}

// The simulator's figures on a generated history match figures computed independently from the model.
func TestSimulatorMatchesKnownAnswersOnAGeneratedHistory(t *testing.T) {
	t.Parallel()
	truths, eps := generate(400)
	asOf := start.Add(90 * day)
	current := classic(dunning.Duration(day), 2, 4)
	candidate := classic(dunning.Duration(day), 1, 15)
	candidate.MaxAttemptsPerCard = 30 // the per-card cap (15) would stop the ladder one retry short
	all := func(p dunning.Policy) simulate.PolicyFor { return func(simulate.Episode) dunning.Policy { return p } }

	// Replaying the policy that made the record gives back the record: the model is faithful to it.
	rec, cur := simulate.Recorded(eps), simulate.Run(eps, all(current), asOf)
	require.Equal(t, rec, cur)

	got := simulate.Run(eps, all(candidate), asOf)
	recovered, charges, canceled, revenue, meanDays := expectDaily(truths, eps)
	require.Equal(t, len(eps), got.Episodes)
	require.Equal(t, recovered, got.Recovered)
	require.Zero(t, got.Open)
	require.Equal(t, charges, got.ChargesSent)
	require.Equal(t, canceled, got.CustomersCanceled)
	require.True(t, decimal.NewFromInt(revenue).Equal(got.RecoveredRevenue["KRW"]), "%s", got.RecoveredRevenue["KRW"])
	require.InDelta(t, meanDays, got.DaysToRecover, 1e-9)
	require.InDelta(t, float64(recovered)/float64(len(eps)), got.RecoveryRate(), 1e-12)

	// Daily retries reach the same cards sooner than the record does, and send more charges for it.
	require.Equal(t, rec.Recovered, got.Recovered, "the model never credits a recovery the record cannot show")
	require.Less(t, got.DaysToRecover, rec.DaysToRecover)
	require.Greater(t, got.ChargesSent, rec.ChargesSent)
}

// A short policy gives up before cards heal; what is still open at the end of the record is neither.
func TestSimulatorCountsCanceledAndOpenEpisodes(t *testing.T) {
	t.Parallel()
	_, eps := generate(60)
	oneRetry := classic(dunning.Duration(day), 1, 1)
	f := simulate.Run(eps, func(simulate.Episode) dunning.Policy { return oneRetry }, start.Add(90*day))
	// Independently: with one retry on day 1, only cards healed by day 1 (heal day 0.5 or 0: recorded
	// success on day 0 or 1) or paid elsewhere by day 1 recover; hard declines wait for the window.
	want := 0
	for _, e := range eps {
		for k, c := range e.Charges {
			if c.Succeeded && c.At.Sub(e.Charges[0].At) <= day && k <= 1 {
				want++
			}
		}
	}
	require.Equal(t, want, f.Recovered)

	// Asked on the day after the first failures, hard declines (window 15 days) are still open.
	early := simulate.Run(eps, func(simulate.Episode) dunning.Policy { return oneRetry }, start.Add(3*day))
	require.Positive(t, early.Open)
}

// Calendar rules apply in the replay as in production: a daily-limit decline at 02:00 KST is retried the
// next business day at 10:00 KST; the card healed in the morning, so the candidate recovers it a day
// sooner than the record.
func TestSimulatorAppliesCalendarRules(t *testing.T) {
	t.Parallel()
	kst, err := dunning.LoadZone("Asia/Seoul")
	require.NoError(t, err)
	first := time.Date(2027, 3, 3, 2, 0, 0, 0, kst) // Wednesday 02:00 KST
	e := simulate.Episode{InvoiceID: "inv", CustomerID: "cus", Amount: decimal.NewFromInt(9900), Currency: "KRW",
		Charges: []simulate.Charge{
			{At: first, Code: "EXCEED_MAX_DAILY_PAYMENT_COUNT"},
			{At: first.Add(day), Code: "EXCEED_MAX_DAILY_PAYMENT_COUNT"}, // Thursday 02:00: still the night
			{At: first.Add(2 * day), Succeeded: true},                    // Friday 02:00
		}}
	e.Recorded = simulate.Outcome{Recovered: true, RecoveredAt: first.Add(2 * day), Charges: 3}
	o := simulate.Replay(e, dunning.DefaultPolicy(), first.Add(30*day))
	// Healed at the midpoint, Thursday 14:00; the candidate's first retry is Thursday 10:00 (declined),
	// the second Friday 10:00 (succeeds).
	require.True(t, o.Recovered)
	require.Equal(t, time.Date(2027, 3, 5, 10, 0, 0, 0, kst), o.RecoveredAt.In(kst))
	require.Equal(t, 3, o.Charges)
}
