package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/dunningworks/billing/dunning"
	"github.com/dunningworks/billing/dunning/simulate"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/statemachine"
)

// PolicyComparison is the policy simulator's answer: what happened, what the current policy gives when
// replayed by the model (close to what happened when the model is faithful), and what the candidate would
// have given, over the episodes that first failed in [Since, AsOf].
type PolicyComparison struct {
	Since, AsOf time.Time
	Recorded    simulate.Figures
	Current     simulate.Figures
	Candidate   simulate.Figures
}

// SimulatePolicy replays the dunning history since `since` under the current policies and under
// candidate as the service-wide policy (plan overrides still apply over it, as they would if it were
// deployed). dunning/simulate documents the model.
func (s *Service) SimulatePolicy(ctx context.Context, candidate dunning.Policy, since time.Time) (PolicyComparison, error) {
	now := s.clock.Now()
	eps, planPolicies, err := s.DunningHistory(ctx, since, now)
	if err != nil {
		return PolicyComparison{}, err
	}
	cand := dunning.NewPolicies(candidate)
	var perr error
	pick := func(ps *dunning.Policies) simulate.PolicyFor {
		return func(e simulate.Episode) dunning.Policy {
			p, err := ps.For(planPolicies[e.InvoiceID])
			if err != nil && perr == nil {
				perr = fmt.Errorf("plan policy of invoice %s: %w", e.InvoiceID, err)
			}
			return p
		}
	}
	out := PolicyComparison{Since: since, AsOf: now, Recorded: simulate.Recorded(eps),
		Current: simulate.Run(eps, pick(s.policies), now), Candidate: simulate.Run(eps, pick(cand), now)}
	return out, perr
}

// DunningHistory loads the episodes (invoices first failed in [since, until]) the simulator replays, and
// each one's plan policy override (by invoice id).
func (s *Service) DunningHistory(ctx context.Context, since, until time.Time) ([]simulate.Episode, map[string][]byte, error) {
	q := s.q(s.pool)
	rows, err := q.DunningEpisodes(ctx, store.DunningEpisodesParams{Since: &since, Until: &until})
	if err != nil {
		return nil, nil, fmt.Errorf("dunning episodes: %w", err)
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	charges, err := q.EpisodeCharges(ctx, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("episode charges: %w", err)
	}
	byInvoice := map[string][]store.EpisodeChargesRow{}
	for _, c := range charges {
		byInvoice[c.InvoiceID] = append(byInvoice[c.InvoiceID], c)
	}
	eps := make([]simulate.Episode, 0, len(rows))
	plans := map[string][]byte{}
	for _, r := range rows {
		e, ok := s.episode(ctx, r, byInvoice[r.ID])
		if !ok {
			continue
		}
		eps = append(eps, e)
		plans[r.ID] = r.PlanPolicy
	}
	return eps, plans, nil
}

// episode builds one simulate.Episode: the charges on the card that failed first, and money that came
// from anywhere else.
func (s *Service) episode(ctx context.Context, r store.DunningEpisodesRow, atts []store.EpisodeChargesRow) (simulate.Episode, bool) {
	e := simulate.Episode{InvoiceID: r.ID, CustomerID: r.CustomerID, Amount: r.Total, Currency: r.Currency}
	var card *string
	for _, a := range atts {
		if a.Backup {
			continue
		}
		if card == nil {
			if a.Status != string(statemachine.AttemptDeclined) {
				continue // an earlier success (e.g. a first charge that paid partly) is not dunning
			}
			card = a.BillingKeyID
		}
		if deref(a.BillingKeyID) != deref(card) {
			continue // a new card: its money counts as coming from elsewhere
		}
		succeeded := a.Status == string(statemachine.AttemptSucceeded)
		e.Charges = append(e.Charges, simulate.Charge{At: a.CreatedAt, Succeeded: succeeded, Code: deref(a.DeclineCode), Hard: deref(a.DeclineClass) == "hard"})
		if succeeded {
			break
		}
	}
	if len(e.Charges) == 0 || r.Status == string(statemachine.InvoiceVoided) {
		// Failed without reaching a card (no key), or waived by support: nothing a policy did.
		return e, false
	}
	paidOnCard := e.Charges[len(e.Charges)-1].Succeeded
	switch {
	case r.Status == string(statemachine.InvoicePaid) && !paidOnCard && r.PaidAt != nil:
		e.PaidElsewhereAt = r.PaidAt
	}
	e.Recorded = simulate.Outcome{Charges: len(e.Charges)}
	switch {
	case r.Status == string(statemachine.InvoicePaid) && r.PaidAt != nil:
		e.Recorded.Recovered, e.Recorded.RecoveredAt = true, *r.PaidAt
	case r.Status == string(statemachine.InvoiceUncollectible):
		e.Recorded.Canceled = true
	}
	if r.TimeZone != nil {
		if loc, err := dunning.LoadZone(*r.TimeZone); err == nil {
			e.TimeZone = loc
		}
	}
	if card != nil && s.vault != nil {
		if c, err := s.vault.Card(ctx, s.pool, *card); err == nil {
			e.Issuer = c.Brand
		}
	}
	return e, true
}
