package console

import (
	"net/http"
	"time"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
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
	q := store.New(c.Pool)
	now := c.Billing.Now()
	v := overviewView{Now: now}

	counts, err := q.DelinquentCounts(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	byState := map[string]int{}
	for _, row := range counts {
		byState[row.Status] = int(row.N)
	}
	for _, st := range []statemachine.SubscriptionStatus{statemachine.SubscriptionPastDue, statemachine.SubscriptionSuspended, statemachine.SubscriptionUnpaid} {
		v.States = append(v.States, stateCount{State: string(st), Count: byState[string(st)]})
		v.Delinquent += byState[string(st)]
	}
	paused, err := q.PausedDunningCount(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v.PausedDunning = int(paused)

	rate, err := q.RecoveryRate(ctx, store.RecoveryRateParams{Since: now.Add(-recoveryWindow), Until: now})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v.Entered, v.Recovered = int(rate.Entered), int(rate.Recovered)

	risk, err := q.AmountAtRisk(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v.AtRisk = []billing.AmountDue{}
	for _, row := range risk {
		v.AtRisk = append(v.AtRisk, billing.AmountDue{Amount: money.String(row.Amount, row.Currency), Currency: row.Currency})
	}

	if c.Findings != nil {
		v.HasFindings = true
		if v.Findings, v.MoreFindings, err = c.Findings(ctx, findingsShown); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	c.render(w, r, http.StatusOK, "overview", view{Title: "Overview", Nav: "overview", Page: v})
}
