package console

import (
	"net/http"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/billing"
)

// The Analytics page: the figures of GET /v1/analytics/recovery and /revenue (the same billing methods)
// drawn as charts, for one currency at a time. docs/analytics.md defines them.

type analyticsView struct {
	Range      billing.AnalyticsRange
	From, To   string
	Currencies []string
	Currency   string
	Recovery   *billing.CurrencyRecovery
	Revenue    *billing.CurrencyRevenue
	Charts     []chart
}

func periodLabel(p billing.Period, interval string) string {
	if interval == billing.IntervalMonth {
		return p.Start.Format("2006-01")
	}
	return p.Start.Format("Jan 2")
}

func num(s string) float64 {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return 0
	}
	f, _ := d.Float64()
	return f
}

func rateOr0(r *float64) float64 {
	if r == nil {
		return 0
	}
	return *r
}

func (c *Console) analytics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rg, err := c.Billing.AnalyticsRange(billing.AnalyticsQuery{From: q.Get("from"), To: q.Get("to"), Interval: q.Get("interval")})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	rec, err := c.Billing.Recovery(r.Context(), rg)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	rev, err := c.Billing.Revenue(r.Context(), rg)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v := analyticsView{Range: rg, From: rg.From.Format(time.RFC3339), To: rg.To.Format(time.RFC3339), Currency: q.Get("currency")}
	seen := map[string]bool{}
	for _, cur := range rec.Currencies {
		seen[cur.Currency] = true
	}
	for _, cur := range rev.Currencies {
		seen[cur.Currency] = true
	}
	for cur := range seen {
		v.Currencies = append(v.Currencies, cur)
	}
	sortStrings(v.Currencies)
	if !seen[v.Currency] && len(v.Currencies) > 0 {
		v.Currency = v.Currencies[0]
	}
	for i := range rec.Currencies {
		if rec.Currencies[i].Currency == v.Currency {
			v.Recovery = &rec.Currencies[i]
		}
	}
	for i := range rev.Currencies {
		if rev.Currencies[i].Currency == v.Currency {
			v.Revenue = &rev.Currencies[i]
		}
	}
	v.Charts = analyticsCharts(rg, v.Currency, v.Recovery, v.Revenue)
	c.render(w, r, http.StatusOK, "analytics", view{Title: "Analytics", Nav: "analytics", Page: v})
}

func analyticsCharts(rg billing.AnalyticsRange, cur string, rec *billing.CurrencyRecovery, rev *billing.CurrencyRevenue) []chart {
	var cats []string
	for _, p := range rg.Periods() {
		cats = append(cats, periodLabel(p, rg.Interval))
	}
	recRate := chart{ID: "chart-recovery-rate", Title: "Recovery rate over time", Percent: true, Categories: cats,
		Caption: "Of the invoices whose collection first failed in each period, the share recovered so far."}
	codes := chart{ID: "chart-decline-codes", Title: "Recovery by first decline code",
		Caption: "At-risk invoices by the code of their first decline, and how many came back."}
	attempts := chart{ID: "chart-attempts", Title: "Recovery by attempt number", Percent: true,
		Caption: "Of the at-risk invoices that got an n-th charge, the share that succeeded."}
	money := chart{ID: "chart-revenue", Title: "Revenue at risk and recovered (" + cur + ")", Categories: cats,
		Caption: "At risk: what newly failed invoices asked. Recovered: what at-risk invoices paid, by payment date."}
	churn := chart{ID: "chart-churn", Title: "Involuntary churn", Percent: true, Categories: cats,
		Caption: "Dunning's final actions (canceled or unpaid) over subscribers at the period's start."}
	mrr := chart{ID: "chart-mrr", Title: "MRR (" + cur + ")", Line: true, Categories: cats,
		Caption: "Monthly recurring revenue at the end of each period, net of discounts, without tax."}
	if rec != nil {
		s := chartSeries{Name: "recovery rate", Class: "s1"}
		for _, p := range rec.Series {
			s.Values = append(s.Values, rateOr0(p.RecoveryRate))
		}
		recRate.Series = []chartSeries{s}
		atRisk, back := chartSeries{Name: "at risk", Class: "s2"}, chartSeries{Name: "recovered", Class: "s1"}
		for i, d := range rec.ByDeclineCode {
			if i == 8 {
				break
			}
			codes.Categories = append(codes.Categories, short(d.DeclineCode, 22))
			atRisk.Values = append(atRisk.Values, float64(d.AtRiskInvoices))
			back.Values = append(back.Values, float64(d.RecoveredInvoices))
		}
		codes.Series = []chartSeries{atRisk, back}
		a := chartSeries{Name: "success rate", Class: "s1"}
		for _, at := range rec.ByAttempt {
			attempts.Categories = append(attempts.Categories, "#"+itoa(at.Attempt))
			a.Values = append(a.Values, rateOr0(at.SuccessRate))
		}
		attempts.Series = []chartSeries{a}
	}
	if rev != nil {
		atRisk, back := chartSeries{Name: "at risk", Class: "s2"}, chartSeries{Name: "recovered", Class: "s1"}
		ch, m := chartSeries{Name: "churn rate", Class: "s3"}, chartSeries{Name: "MRR", Class: "line"}
		for _, p := range rev.Series {
			atRisk.Values = append(atRisk.Values, num(p.AtRiskAmount))
			back.Values = append(back.Values, num(p.RecoveredAmount))
			ch.Values = append(ch.Values, rateOr0(p.ChurnRate))
			m.Values = append(m.Values, num(p.MRR))
		}
		money.Series = []chartSeries{atRisk, back}
		churn.Series = []chartSeries{ch}
		mrr.Series = []chartSeries{m}
	}
	out := []chart{recRate, codes, attempts, money, churn, mrr}
	for i := range out {
		out[i] = out[i].layout()
	}
	return out
}
