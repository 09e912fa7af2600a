package console

import (
	"net/http"
	"time"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/statemachine"
)

// recoveryWindow is the overview's look-back for the recovery rate.
const recoveryWindow = 30 * 24 * time.Hour

// findingsShown is how many open reconciliation findings the overview lists.
const findingsShown = 10

type stateCount struct {
	State string
	Count int
}

type overviewView struct {
	Now           time.Time
	States        []stateCount
	Delinquent    int
	PausedDunning int
	Entered       int
	Recovered     int
	AtRisk        []billing.AmountDue
	HasFindings   bool
	Findings      []Finding
	MoreFindings  bool
}

// overview is the landing page: how many accounts are in each delinquency state, how many came back in
// the last 30 days, what is at stake, and what reconciliation left for a person to decide.
func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := c.Billing.Now()
	v := overviewView{Now: now}
	o, err := c.Billing.DelinquencyOverview(ctx, now.Add(-recoveryWindow), now)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, st := range []statemachine.SubscriptionStatus{statemachine.SubscriptionPastDue, statemachine.SubscriptionSuspended, statemachine.SubscriptionUnpaid} {
		v.States = append(v.States, stateCount{State: string(st), Count: o.ByState[string(st)]})
		v.Delinquent += o.ByState[string(st)]
	}
	v.PausedDunning, v.Entered, v.Recovered, v.AtRisk = o.PausedDunning, o.Entered, o.Recovered, o.AtRisk

	if c.Findings != nil {
		v.HasFindings = true
		if v.Findings, v.MoreFindings, err = c.Findings(ctx, findingsShown); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	c.render(w, r, http.StatusOK, "overview", view{Title: "Overview", Nav: "overview", Page: v})
}
