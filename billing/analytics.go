package billing

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
	"github.com/dunningworks/billing/statemachine"
)

// Analytics: the figures of GET /v1/analytics/recovery and /v1/analytics/revenue and of the console's
// Analytics page. docs/analytics.md defines every figure; the comments here say how each is computed.

// Bucket sizes of an analytics series.
const (
	IntervalDay   = "day"
	IntervalWeek  = "week"
	IntervalMonth = "month"
)

// DefaultAnalyticsWindow is the range a request without `from` covers: the 90 days before `to`.
const DefaultAnalyticsWindow = 90 * 24 * time.Hour

// MaxAnalyticsPeriods bounds a series (two years of days).
const MaxAnalyticsPeriods = 731

// AnalyticsRange is a validated range: [From, To) cut into calendar periods of Interval (UTC), and an
// optional currency.
type AnalyticsRange struct {
	From, To time.Time
	Interval string
	Currency string
}

// AnalyticsQuery is a range as a client sends it (RFC 3339 strings; empty means the default).
type AnalyticsQuery struct {
	From, To, Interval, Currency string
}

// AnalyticsRange validates q against the domain clock: `to` defaults to now, `from` to 90 days before
// `to`, `interval` to week. Every problem is a 422 naming its parameter.
func (s *Service) AnalyticsRange(q AnalyticsQuery) (AnalyticsRange, error) {
	return ParseAnalyticsRange(q, s.clock.Now())
}

// ParseAnalyticsRange is AnalyticsRange with now given.
func ParseAnalyticsRange(q AnalyticsQuery, now time.Time) (AnalyticsRange, error) {
	var v apperr.Validation
	r := AnalyticsRange{To: now.UTC(), Interval: q.Interval, Currency: q.Currency}
	parse := func(field, s string, dst *time.Time) {
		if s == "" {
			return
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			v.Add(field, "must be an RFC 3339 time such as 2026-01-31T15:00:00Z")
			return
		}
		*dst = t.UTC()
	}
	parse("to", q.To, &r.To)
	r.From = r.To.Add(-DefaultAnalyticsWindow)
	parse("from", q.From, &r.From)
	if r.Interval == "" {
		r.Interval = IntervalWeek
	}
	switch r.Interval {
	case IntervalDay, IntervalWeek, IntervalMonth:
	default:
		v.Add("interval", "must be day, week or month")
	}
	if r.Currency != "" && !money.ValidCurrency(r.Currency) {
		v.Add("currency", "must be a supported ISO 4217 code such as KRW")
	}
	if err := v.Err(); err != nil {
		return AnalyticsRange{}, err
	}
	if !r.From.Before(r.To) {
		return AnalyticsRange{}, apperr.Invalid("from", "must be before to (%s)", r.To.Format(time.RFC3339))
	}
	if n := len(r.Periods()); n > MaxAnalyticsPeriods {
		return AnalyticsRange{}, apperr.Invalid("interval", "the range holds %d %s periods; at most %d: choose a longer interval or a shorter range",
			n, r.Interval, MaxAnalyticsPeriods)
	}
	return r, nil
}

// Period is one bucket of a series: [Start, End).
type Period struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// periodStart is the calendar start (UTC) of the period holding t: midnight, the Monday, the 1st.
func periodStart(t time.Time, interval string) time.Time {
	y, m, d := t.UTC().Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	switch interval {
	case IntervalWeek:
		return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	case IntervalMonth:
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	}
	return day
}

func nextPeriod(start time.Time, interval string) time.Time {
	switch interval {
	case IntervalWeek:
		return start.AddDate(0, 0, 7)
	case IntervalMonth:
		return start.AddDate(0, 1, 0)
	}
	return start.AddDate(0, 0, 1)
}

// Periods cuts [From, To) into calendar periods (UTC days, ISO weeks from Monday, months), the first and
// last clipped to the range.
func (r AnalyticsRange) Periods() []Period {
	var out []Period
	for start := periodStart(r.From, r.Interval); start.Before(r.To); start = nextPeriod(start, r.Interval) {
		p := Period{Start: start, End: nextPeriod(start, r.Interval)}
		if p.Start.Before(r.From) {
			p.Start = r.From
		}
		if p.End.After(r.To) {
			p.End = r.To
		}
		out = append(out, p)
		if len(out) > MaxAnalyticsPeriods {
			break
		}
	}
	return out
}

// periodOf is the index of the period holding t, or -1 outside the range.
func periodOf(ps []Period, t time.Time) int {
	i := sort.Search(len(ps), func(i int) bool { return ps[i].End.After(t) })
	if i == len(ps) || t.Before(ps[i].Start) {
		return -1
	}
	return i
}

func (r AnalyticsRange) wants(currency string) bool {
	return r.Currency == "" || r.Currency == currency
}

// rate is num/den rounded to four decimals; nil when den is zero (no rate, not a zero one).
func rate(num, den int) *float64 {
	if den == 0 {
		return nil
	}
	v := math.Round(10000*float64(num)/float64(den)) / 10000
	return &v
}

// ---- recovery ----

// Outcomes of an at-risk invoice, as of now.
const (
	outcomeRecovered = "recovered"
	outcomeOpen      = "open"
	outcomeLost      = "lost"
	outcomeWaived    = "waived"
)

// RecoveryTally counts at-risk invoices by outcome, with the amounts that were at risk.
type RecoveryTally struct {
	AtRiskInvoices    int      `json:"at_risk_invoices"`
	RecoveredInvoices int      `json:"recovered_invoices"`
	OpenInvoices      int      `json:"open_invoices"`
	LostInvoices      int      `json:"lost_invoices"`
	WaivedInvoices    int      `json:"waived_invoices"`
	RecoveryRate      *float64 `json:"recovery_rate"`
	AtRiskAmount      string   `json:"at_risk_amount"`
	RecoveredAmount   string   `json:"recovered_amount"`
	OpenAmount        string   `json:"open_amount"`
	LostAmount        string   `json:"lost_amount"`
	WaivedAmount      string   `json:"waived_amount"`
}

// tally is RecoveryTally while it is being added up.
type tally struct {
	n       map[string]int
	amounts map[string]decimal.Decimal
	atRisk  int
	asked   decimal.Decimal
}

func (t *tally) add(outcome string, asked decimal.Decimal) {
	if t.n == nil {
		t.n, t.amounts = map[string]int{}, map[string]decimal.Decimal{}
	}
	t.atRisk++
	t.asked = t.asked.Add(asked)
	t.n[outcome]++
	t.amounts[outcome] = t.amounts[outcome].Add(asked)
}

func (t tally) out(currency string) RecoveryTally {
	amt := func(d decimal.Decimal) string { return money.String(money.Round(d, currency), currency) }
	return RecoveryTally{AtRiskInvoices: t.atRisk, RecoveredInvoices: t.n[outcomeRecovered], OpenInvoices: t.n[outcomeOpen],
		LostInvoices: t.n[outcomeLost], WaivedInvoices: t.n[outcomeWaived], RecoveryRate: rate(t.n[outcomeRecovered], t.atRisk),
		AtRiskAmount: amt(t.asked), RecoveredAmount: amt(t.amounts[outcomeRecovered]), OpenAmount: amt(t.amounts[outcomeOpen]),
		LostAmount: amt(t.amounts[outcomeLost]), WaivedAmount: amt(t.amounts[outcomeWaived])}
}

// RecoveryPeriod is the tally of the invoices that became at risk in one period.
type RecoveryPeriod struct {
	Period
	RecoveryTally
}

// DeclineCodeRecovery is the tally of the invoices whose first failure had one decline code.
type DeclineCodeRecovery struct {
	DeclineCode  string  `json:"decline_code"`
	DeclineClass *string `json:"decline_class"`
	RecoveryTally
}

// AttemptRecovery is how the n-th charge of at-risk invoices went: how many invoices got an n-th
// charge, how many of those succeeded, and what the successes recovered.
type AttemptRecovery struct {
	Attempt         int      `json:"attempt"`
	Charges         int      `json:"charges"`
	Succeeded       int      `json:"succeeded"`
	SuccessRate     *float64 `json:"success_rate"`
	RecoveredAmount string   `json:"recovered_amount"`
}

// CurrencyRecovery is one currency's recovery figures.
type CurrencyRecovery struct {
	Currency string `json:"currency"`
	RecoveryTally
	Series        []RecoveryPeriod      `json:"series"`
	ByDeclineCode []DeclineCodeRecovery `json:"by_decline_code"`
	ByAttempt     []AttemptRecovery     `json:"by_attempt"`
	// RecoveredWithoutCharge counts recovered invoices no card charge paid (an offline payment).
	RecoveredWithoutCharge int `json:"recovered_without_charge"`
}

// RecoveryReport is GET /v1/analytics/recovery.
type RecoveryReport struct {
	From       time.Time          `json:"from"`
	To         time.Time          `json:"to"`
	Interval   string             `json:"interval"`
	AsOf       time.Time          `json:"as_of"`
	Periods    []Period           `json:"periods"`
	Currencies []CurrencyRecovery `json:"currencies"`
}

// atRiskInvoice is one at-risk invoice with its card charges.
type atRiskInvoice struct {
	id, currency, outcome string
	firstFailed           time.Time
	asked                 decimal.Decimal
	charges               []charge
}

type charge struct {
	succeeded   bool
	code, class string
}

func outcomeOf(status string, amountPaid, creditApplied decimal.Decimal) string {
	switch statemachine.InvoiceStatus(status) {
	case statemachine.InvoicePaid:
		if amountPaid.GreaterThan(creditApplied) {
			return outcomeRecovered
		}
		return outcomeWaived // settled by credit notes: nothing was collected
	case statemachine.InvoiceUncollectible:
		return outcomeLost
	case statemachine.InvoiceVoided:
		return outcomeWaived
	}
	return outcomeOpen
}

// Recovery computes the recovery figures of the invoices whose collection first failed in the range,
// each followed to now.
func (s *Service) Recovery(ctx context.Context, r AnalyticsRange) (RecoveryReport, error) {
	rows, err := s.q(s.pool).AnalyticsAtRiskCharges(ctx, store.AnalyticsAtRiskChargesParams{Since: &r.From, Until: &r.To})
	if err != nil {
		return RecoveryReport{}, fmt.Errorf("at-risk invoices: %w", err)
	}
	var invoices []*atRiskInvoice
	for _, row := range rows {
		if !r.wants(row.Currency) {
			continue
		}
		if len(invoices) == 0 || invoices[len(invoices)-1].id != row.ID {
			invoices = append(invoices, &atRiskInvoice{id: row.ID, currency: row.Currency, firstFailed: row.FirstFailedAt,
				asked: row.Asked, outcome: outcomeOf(row.Status, row.AmountPaid, row.CreditApplied)})
		}
		if row.ChargeSeq != nil {
			inv := invoices[len(invoices)-1]
			inv.charges = append(inv.charges, charge{succeeded: deref(row.ChargeStatus) == string(statemachine.AttemptSucceeded),
				code: deref(row.DeclineCode), class: deref(row.DeclineClass)})
		}
	}
	return buildRecovery(r, s.clock.Now(), invoices), nil
}

// buildRecovery adds the invoices up (pure, so the arithmetic is tested without a database).
func buildRecovery(r AnalyticsRange, now time.Time, invoices []*atRiskInvoice) RecoveryReport {
	periods := r.Periods()
	type codeKey struct{ code, class string }
	type acc struct {
		total      tally
		series     []tally
		codes      map[codeKey]*tally
		attempts   []AttemptRecovery
		attemptAmt []decimal.Decimal
		offline    int
	}
	byCur := map[string]*acc{}
	for _, inv := range invoices {
		a := byCur[inv.currency]
		if a == nil {
			a = &acc{series: make([]tally, len(periods)), codes: map[codeKey]*tally{}}
			byCur[inv.currency] = a
		}
		a.total.add(inv.outcome, inv.asked)
		if i := periodOf(periods, inv.firstFailed); i >= 0 {
			a.series[i].add(inv.outcome, inv.asked)
		}
		// The first failure's code: the first declined charge's, or the service's code for an invoice that
		// found no card to charge.
		k := codeKey{code: codeNoKey}
		for _, c := range inv.charges {
			if !c.succeeded {
				k = codeKey{code: c.code, class: c.class}
				break
			}
		}
		if a.codes[k] == nil {
			a.codes[k] = &tally{}
		}
		a.codes[k].add(inv.outcome, inv.asked)
		paidByCharge := false
		for n, c := range inv.charges {
			for len(a.attempts) <= n {
				a.attempts = append(a.attempts, AttemptRecovery{Attempt: len(a.attempts) + 1})
				a.attemptAmt = append(a.attemptAmt, decimal.Zero)
			}
			a.attempts[n].Charges++
			if c.succeeded {
				a.attempts[n].Succeeded++
				if inv.outcome == outcomeRecovered && !paidByCharge {
					a.attemptAmt[n] = a.attemptAmt[n].Add(inv.asked)
				}
				paidByCharge = true
			}
		}
		if inv.outcome == outcomeRecovered && !paidByCharge {
			a.offline++
		}
	}
	out := RecoveryReport{From: r.From, To: r.To, Interval: r.Interval, AsOf: now.UTC(), Periods: periods, Currencies: []CurrencyRecovery{}}
	for _, cur := range sortedCurrencies(byCur) {
		a := byCur[cur]
		c := CurrencyRecovery{Currency: cur, RecoveryTally: a.total.out(cur), RecoveredWithoutCharge: a.offline,
			Series: make([]RecoveryPeriod, len(periods)), ByDeclineCode: []DeclineCodeRecovery{}, ByAttempt: []AttemptRecovery{}}
		for i, p := range periods {
			c.Series[i] = RecoveryPeriod{Period: p, RecoveryTally: a.series[i].out(cur)}
		}
		for k, t := range a.codes {
			d := DeclineCodeRecovery{DeclineCode: k.code, RecoveryTally: t.out(cur)}
			if k.class != "" {
				class := k.class
				d.DeclineClass = &class
			}
			c.ByDeclineCode = append(c.ByDeclineCode, d)
		}
		// Most at risk first; ties by code, so the order is stable.
		sort.Slice(c.ByDeclineCode, func(i, j int) bool {
			x, y := c.ByDeclineCode[i], c.ByDeclineCode[j]
			if x.AtRiskInvoices != y.AtRiskInvoices {
				return x.AtRiskInvoices > y.AtRiskInvoices
			}
			return x.DeclineCode < y.DeclineCode
		})
		for n, at := range a.attempts {
			at.SuccessRate = rate(at.Succeeded, at.Charges)
			at.RecoveredAmount = money.String(money.Round(a.attemptAmt[n], cur), cur)
			c.ByAttempt = append(c.ByAttempt, at)
		}
		out.Currencies = append(out.Currencies, c)
	}
	return out
}

func sortedCurrencies[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---- revenue: at risk and recovered per period, MRR, involuntary churn ----

// RevenuePeriod is one period of a currency's revenue series.
type RevenuePeriod struct {
	Period
	// AtRiskAmount is what invoices asked of a card whose collection first failed in the period.
	AtRiskAmount string `json:"at_risk_amount"`
	// RecoveredAmount is what at-risk invoices (whenever they failed) asked and then paid in the period.
	RecoveredAmount string `json:"recovered_amount"`
	// MRR is the monthly recurring revenue at the end of the period; MRRAtStart at its start.
	MRR        string `json:"mrr"`
	MRRAtStart string `json:"mrr_at_start"`
	// Subscribers at the start and end of the period (the subscriptions MRR counts).
	SubscribersAtStart int `json:"subscribers_at_start"`
	SubscribersAtEnd   int `json:"subscribers_at_end"`
	// Involuntary churn: dunning's final actions in the period (canceled, or marked unpaid).
	ChurnedCanceled int      `json:"churned_canceled"`
	ChurnedUnpaid   int      `json:"churned_unpaid"`
	Churned         int      `json:"churned"`
	ChurnRate       *float64 `json:"churn_rate"`
}

// CurrencyRevenue is one currency's revenue figures: totals over the range and the series.
type CurrencyRevenue struct {
	Currency        string          `json:"currency"`
	AtRiskAmount    string          `json:"at_risk_amount"`
	RecoveredAmount string          `json:"recovered_amount"`
	MRR             string          `json:"mrr"`
	Subscribers     int             `json:"subscribers"`
	Churned         int             `json:"churned"`
	ChurnRate       *float64        `json:"churn_rate"`
	Series          []RevenuePeriod `json:"series"`
}

// RevenueReport is GET /v1/analytics/revenue.
type RevenueReport struct {
	From       time.Time         `json:"from"`
	To         time.Time         `json:"to"`
	Interval   string            `json:"interval"`
	AsOf       time.Time         `json:"as_of"`
	Periods    []Period          `json:"periods"`
	Currencies []CurrencyRevenue `json:"currencies"`
}

// recurring is one initial or renewal invoice as MRR sees it.
type recurring struct {
	sub, currency string
	start, end    time.Time
	ended         *time.Time
	monthly       decimal.Decimal
}

// covers says whether the invoice's subscription is counted at t: the invoice's service period holds t
// and the subscription had not ended by then.
func (c recurring) covers(t time.Time) bool {
	return !c.start.After(t) && t.Before(c.end) && (c.ended == nil || t.Before(*c.ended))
}

// MonthlyAmount normalizes a recurring amount to a month: a year is 12 months, a week 52/12 of a month's
// worth per week (52 weeks a year), a day 365/12 per month; interval_count divides. Not rounded: MRR is
// rounded once, per currency, after the sum.
func MonthlyAmount(amount decimal.Decimal, interval string, count int32) decimal.Decimal {
	if count < 1 {
		count = 1
	}
	n := decimal.NewFromInt32(count)
	const precision = 12
	switch Interval(interval) {
	case Year:
		return amount.DivRound(n.Mul(decimal.NewFromInt(12)), precision)
	case Week:
		return amount.Mul(decimal.NewFromInt(52)).DivRound(n.Mul(decimal.NewFromInt(12)), precision)
	case Day:
		return amount.Mul(decimal.NewFromInt(365)).DivRound(n.Mul(decimal.NewFromInt(12)), precision)
	}
	return amount.DivRound(n, precision)
}

// Revenue computes at-risk and recovered revenue per period, MRR and involuntary churn over the range.
func (s *Service) Revenue(ctx context.Context, r AnalyticsRange) (RevenueReport, error) {
	q := s.q(s.pool)
	atRisk, err := q.AnalyticsAtRiskCharges(ctx, store.AnalyticsAtRiskChargesParams{Since: &r.From, Until: &r.To})
	if err != nil {
		return RevenueReport{}, fmt.Errorf("at-risk invoices: %w", err)
	}
	recovered, err := q.AnalyticsRecoveredPayments(ctx, store.AnalyticsRecoveredPaymentsParams{Since: &r.From, Until: &r.To})
	if err != nil {
		return RevenueReport{}, fmt.Errorf("recovered payments: %w", err)
	}
	recs, err := q.AnalyticsRecurringInvoices(ctx, store.AnalyticsRecurringInvoicesParams{Since: r.From, Until: r.To})
	if err != nil {
		return RevenueReport{}, fmt.Errorf("recurring invoices: %w", err)
	}
	churn, err := q.AnalyticsInvoluntaryChurn(ctx, store.AnalyticsInvoluntaryChurnParams{Since: r.From, Until: r.To})
	if err != nil {
		return RevenueReport{}, fmt.Errorf("involuntary churn: %w", err)
	}
	in := revenueInput{}
	seen := ""
	for _, row := range atRisk {
		if row.ID == seen || !r.wants(row.Currency) {
			continue // one row per charge: the invoice once
		}
		seen = row.ID
		in.atRisk = append(in.atRisk, moneyAt{currency: row.Currency, at: row.FirstFailedAt, amount: row.Asked})
	}
	for _, row := range recovered {
		if r.wants(row.Currency) {
			in.recovered = append(in.recovered, moneyAt{currency: row.Currency, at: row.PaidAt, amount: row.Asked})
		}
	}
	for _, row := range recs {
		if !r.wants(row.Currency) {
			continue
		}
		c := recurring{sub: row.SubscriptionID, currency: row.Currency, start: row.PeriodStart, end: row.PeriodEnd,
			monthly: MonthlyAmount(row.TotalExcludingTax, row.Interval, row.IntervalCount)}
		switch statemachine.SubscriptionStatus(row.SubscriptionStatus) {
		case statemachine.SubscriptionCanceled:
			c.ended = row.CanceledAt
		case statemachine.SubscriptionUnpaid:
			if t, ok := row.UnpaidAt.(time.Time); ok {
				c.ended = &t
			}
		}
		in.recurring = append(in.recurring, c)
	}
	for _, row := range churn {
		if r.wants(row.Currency) {
			in.churn = append(in.churn, churnEvent{currency: row.Currency, at: row.OccurredAt, unpaid: row.Type == EvtSubscriptionUnpaid})
		}
	}
	return buildRevenue(r, s.clock.Now(), in), nil
}

type moneyAt struct {
	currency string
	at       time.Time
	amount   decimal.Decimal
}

type churnEvent struct {
	currency string
	at       time.Time
	unpaid   bool
}

type revenueInput struct {
	atRisk, recovered []moneyAt
	recurring         []recurring
	churn             []churnEvent
}

// snapshot is MRR and the subscribers counted at one instant, per currency.
type snapshot struct {
	mrr  map[string]decimal.Decimal
	subs map[string]int
}

// snapshotAt counts each subscription once at t (the invoice with the latest period start that holds t).
func snapshotAt(recs []recurring, t time.Time) snapshot {
	type pick struct {
		start   time.Time
		cur     string
		monthly decimal.Decimal
	}
	bySub := map[string]pick{}
	for _, c := range recs {
		if !c.covers(t) {
			continue
		}
		if p, ok := bySub[c.sub]; !ok || c.start.After(p.start) {
			bySub[c.sub] = pick{start: c.start, cur: c.currency, monthly: c.monthly}
		}
	}
	s := snapshot{mrr: map[string]decimal.Decimal{}, subs: map[string]int{}}
	for _, p := range bySub {
		s.mrr[p.cur] = s.mrr[p.cur].Add(p.monthly)
		s.subs[p.cur]++
	}
	return s
}

func buildRevenue(r AnalyticsRange, now time.Time, in revenueInput) RevenueReport {
	periods := r.Periods()
	currencies := map[string]bool{}
	for _, m := range in.atRisk {
		currencies[m.currency] = true
	}
	for _, m := range in.recovered {
		currencies[m.currency] = true
	}
	for _, c := range in.recurring {
		currencies[c.currency] = true
	}
	for _, c := range in.churn {
		currencies[c.currency] = true
	}
	// Snapshots at every period boundary: the start of the first period, then each period's end.
	snaps := make([]snapshot, len(periods)+1)
	if len(periods) > 0 {
		snaps[0] = snapshotAt(in.recurring, periods[0].Start)
		for i, p := range periods {
			snaps[i+1] = snapshotAt(in.recurring, p.End)
		}
	}
	out := RevenueReport{From: r.From, To: r.To, Interval: r.Interval, AsOf: now.UTC(), Periods: periods, Currencies: []CurrencyRevenue{}}
	for _, cur := range sortedCurrencies(currencies) {
		amt := func(d decimal.Decimal) string { return money.String(money.Round(d, cur), cur) }
		atRisk := make([]decimal.Decimal, len(periods))
		recovered := make([]decimal.Decimal, len(periods))
		var totalAtRisk, totalRecovered decimal.Decimal
		for _, m := range in.atRisk {
			if m.currency != cur {
				continue
			}
			totalAtRisk = totalAtRisk.Add(m.amount)
			if i := periodOf(periods, m.at); i >= 0 {
				atRisk[i] = atRisk[i].Add(m.amount)
			}
		}
		for _, m := range in.recovered {
			if m.currency != cur {
				continue
			}
			totalRecovered = totalRecovered.Add(m.amount)
			if i := periodOf(periods, m.at); i >= 0 {
				recovered[i] = recovered[i].Add(m.amount)
			}
		}
		c := CurrencyRevenue{Currency: cur, AtRiskAmount: amt(totalAtRisk), RecoveredAmount: amt(totalRecovered),
			Series: make([]RevenuePeriod, len(periods))}
		for i, p := range periods {
			c.Series[i] = RevenuePeriod{Period: p, AtRiskAmount: amt(atRisk[i]), RecoveredAmount: amt(recovered[i]),
				MRRAtStart: amt(snaps[i].mrr[cur]), MRR: amt(snaps[i+1].mrr[cur]),
				SubscribersAtStart: snaps[i].subs[cur], SubscribersAtEnd: snaps[i+1].subs[cur]}
		}
		for _, e := range in.churn {
			if e.currency != cur {
				continue
			}
			c.Churned++
			if i := periodOf(periods, e.at); i >= 0 {
				if e.unpaid {
					c.Series[i].ChurnedUnpaid++
				} else {
					c.Series[i].ChurnedCanceled++
				}
				c.Series[i].Churned++
			}
		}
		for i := range c.Series {
			c.Series[i].ChurnRate = rate(c.Series[i].Churned, c.Series[i].SubscribersAtStart)
		}
		last := snaps[len(snaps)-1]
		c.MRR, c.Subscribers = amt(last.mrr[cur]), last.subs[cur]
		c.ChurnRate = rate(c.Churned, snaps[0].subs[cur])
		out.Currencies = append(out.Currencies, c)
	}
	return out
}
