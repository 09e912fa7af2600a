package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/dunning"
	"github.com/dunningworks/billing/dunning/simulate"
	"github.com/dunningworks/billing/money"
)

// The policy comparison: the operator pastes (or uploads) a candidate dunning policy, read exactly like
// BILLING_DUNNING_POLICY, and sees what `billingctl dunning simulate` prints (billing.SimulatePolicy and
// the model of dunning/simulate, not a copy of them): the record, the current policy and the candidate
// replayed over the same episodes, side by side, with charts.

type simulateView struct {
	Policy   string
	Since    string
	Problems []string
	Result   *simulateResult
}

type simulateResult struct {
	Since, AsOf time.Time
	Episodes    int
	Rows        []simulateRow
	Charts      []chart
}

type simulateRow struct {
	Label                        string
	Recorded, Current, Candidate string
}

const policyFormLimit = 32 << 10

func (c *Console) simulateForm(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "simulate", view{Title: "Policy simulator", Nav: "simulate", Page: simulateView{Since: "90d"}})
}

func (c *Console) simulate(w http.ResponseWriter, r *http.Request) {
	v := simulateView{Policy: r.PostFormValue("policy"), Since: strings.TrimSpace(r.PostFormValue("since"))}
	if v.Since == "" {
		v.Since = "90d"
	}
	since, err := dunning.ParseDuration(v.Since)
	if err != nil || since <= 0 {
		v.Problems = append(v.Problems, fmt.Sprintf("since %q: a positive duration such as 90d", v.Since))
	}
	if len(v.Policy) > policyFormLimit {
		v.Problems = append(v.Problems, "the policy is larger than 32 KiB")
	}
	var candidate dunning.Policy
	if len(v.Problems) == 0 {
		candidate, err = dunning.ParsePolicy([]byte(v.Policy), dunning.DefaultPolicy())
		var pe *dunning.PolicyError
		if errors.As(err, &pe) {
			v.Problems = append(v.Problems, pe.Problems...)
		} else if err != nil {
			v.Problems = append(v.Problems, err.Error())
		}
	}
	if len(v.Problems) > 0 {
		c.render(w, r, http.StatusUnprocessableEntity, "simulate", view{Title: "Policy simulator", Nav: "simulate", Page: v})
		return
	}
	cmp, err := c.Billing.SimulatePolicy(r.Context(), candidate, c.Billing.Now().Add(-since.D()))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v.Result = comparison(cmp)
	c.render(w, r, http.StatusOK, "simulate", view{Title: "Policy simulator", Nav: "simulate", Page: v})
}

func comparison(cmp billing.PolicyComparison) *simulateResult {
	res := &simulateResult{Since: cmp.Since, AsOf: cmp.AsOf, Episodes: cmp.Recorded.Episodes}
	cols := []simulate.Figures{cmp.Recorded, cmp.Current, cmp.Candidate}
	row := func(label string, f func(simulate.Figures) string) {
		res.Rows = append(res.Rows, simulateRow{Label: label, Recorded: f(cols[0]), Current: f(cols[1]), Candidate: f(cols[2])})
	}
	currencies := map[string]bool{}
	for _, f := range cols {
		for _, cur := range f.Currencies() {
			currencies[cur] = true
		}
	}
	names := []string{"recorded", "current", "candidate"}
	bars := func(id, title string, percent bool, f func(simulate.Figures) float64) chart {
		ch := chart{ID: id, Title: title, Percent: percent, Categories: names}
		for i, fig := range cols {
			s := chartSeries{Name: names[i], Class: []string{"s3", "s2", "s1"}[i], Values: make([]float64, len(cols))}
			s.Values[i] = f(fig)
			ch.Series = append(ch.Series, s)
		}
		return ch
	}
	for _, cur := range sortedKeys(currencies) {
		row("recovered revenue "+cur, func(f simulate.Figures) string { return amount(money.String(f.RecoveredRevenue[cur], cur)) })
		res.Charts = append(res.Charts, bars("sim-revenue-"+cur, "Recovered revenue ("+cur+")", false, func(f simulate.Figures) float64 {
			v, _ := f.RecoveredRevenue[cur].Float64()
			return v
		}))
	}
	row("recovery rate", func(f simulate.Figures) string { return fmt.Sprintf("%.1f%%", 100*f.RecoveryRate()) })
	row("episodes recovered", func(f simulate.Figures) string { return fmt.Sprint(f.Recovered) })
	row("charges sent", func(f simulate.Figures) string { return fmt.Sprint(f.ChargesSent) })
	row("customers canceled", func(f simulate.Figures) string { return fmt.Sprint(f.CustomersCanceled) })
	row("still in dunning", func(f simulate.Figures) string { return fmt.Sprint(f.Open) })
	row("days to recover (mean)", func(f simulate.Figures) string { return fmt.Sprintf("%.1f", f.DaysToRecover) })
	res.Charts = append(res.Charts,
		bars("sim-rate", "Recovery rate", true, func(f simulate.Figures) float64 { return f.RecoveryRate() }),
		bars("sim-charges", "Charges sent", false, func(f simulate.Figures) float64 { return float64(f.ChargesSent) }),
		bars("sim-canceled", "Customers canceled", false, func(f simulate.Figures) float64 { return float64(f.CustomersCanceled) }))
	for i := range res.Charts {
		res.Charts[i] = res.Charts[i].layout()
	}
	return res
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}
