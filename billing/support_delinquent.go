package billing

import (
	"context"
	"time"

	"github.com/dunningworks/billing/audit"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
	"github.com/dunningworks/billing/statemachine"
)

// DelinquentFilter narrows ListDelinquent.
type DelinquentFilter struct {
	State        string // past_due, suspended or unpaid; empty for all three
	MinDays      int    // delinquent for at least this many days
	Gateway      string // the gateway of the latest charge attempt
	DeclineClass string // hard or soft: the class of the latest decline
}

// DelinquentRow is API.md's delinquent row.
type DelinquentRow struct {
	SubscriptionID   string     `json:"subscription_id"`
	CustomerID       string     `json:"customer_id"`
	Status           string     `json:"status"`
	AmountDue        string     `json:"amount_due"`
	Currency         string     `json:"currency"`
	DaysDelinquent   int        `json:"days_delinquent"`
	Attempts         int        `json:"attempts"`
	NextAttemptAt    *time.Time `json:"next_attempt_at"`
	LastDeclineCode  *string    `json:"last_decline_code"`
	LastDeclineClass *string    `json:"last_decline_class"`
	DunningPaused    bool       `json:"dunning_paused"`
	// DelinquentSince is when the subscription first failed (the list's order and cursor).
	DelinquentSince time.Time `json:"delinquent_since"`
}

// ListDelinquent lists subscriptions in past_due, suspended or unpaid, longest delinquent first, with
// what they owe (open and written-off invoices), their declined attempts, the next retry and the last
// decline.
func (s *Service) ListDelinquent(ctx context.Context, f DelinquentFilter, p page.Request) (page.List[DelinquentRow], error) {
	var v apperr.Validation
	switch statemachine.SubscriptionStatus(f.State) {
	case "", statemachine.SubscriptionPastDue, statemachine.SubscriptionSuspended, statemachine.SubscriptionUnpaid:
	default:
		v.Add("state", "must be past_due, suspended or unpaid")
	}
	if f.MinDays < 0 || f.MinDays > 3650 {
		v.Add("min_days", "must be from 0 to 3650")
	}
	switch gateway.DeclineClass(f.DeclineClass) {
	case "", gateway.Hard, gateway.Soft:
	default:
		v.Add("decline_class", "must be hard or soft")
	}
	if err := v.Err(); err != nil {
		return page.List[DelinquentRow]{}, err
	}
	now := s.clock.Now()
	var sinceBefore *time.Time
	if f.MinDays > 0 {
		t := now.Add(-time.Duration(f.MinDays) * 24 * time.Hour)
		sinceBefore = &t
	}
	rows, err := s.q(s.pool).ListDelinquent(ctx, store.ListDelinquentParams{Status: strPtr(f.State), SinceBefore: sinceBefore,
		Gateway: strPtr(f.Gateway), DeclineClass: strPtr(f.DeclineClass), HasCursor: p.HasCursor(), AfterTime: p.AfterTime,
		AfterID: p.AfterID, Max: int32(p.Limit + 1)})
	if err != nil {
		return page.List[DelinquentRow]{}, err
	}
	out := make([]DelinquentRow, 0, len(rows))
	for _, r := range rows {
		d := DelinquentRow{SubscriptionID: r.ID, CustomerID: r.CustomerID, Status: r.Status, AmountDue: money.String(r.AmountDue, r.Currency),
			Currency: r.Currency, DaysDelinquent: daysBetween(r.PastDueSince, now), Attempts: int(r.Attempts),
			LastDeclineCode: r.DeclineCode, LastDeclineClass: r.DeclineClass, DunningPaused: r.DunningPaused, DelinquentSince: r.PastDueSince.UTC()}
		if t, ok := r.NextAttemptAt.(time.Time); ok {
			t = t.UTC()
			d.NextAttemptAt = &t
		}
		out = append(out, d)
	}
	return page.Build(out, p.Limit, func(d DelinquentRow) (time.Time, string) { return d.DelinquentSince, d.SubscriptionID }), nil
}

// AuditLog lists the audit log, oldest first.
func (s *Service) AuditLog(ctx context.Context, f audit.Filter, p page.Request) (page.List[audit.Record], error) {
	return audit.List(ctx, s.pool, f, p)
}

// DelinquencyOverview is the support desk's summary of delinquency.
type DelinquencyOverview struct {
	// ByState counts subscriptions in past_due, suspended and unpaid (a state with none is absent).
	ByState       map[string]int
	PausedDunning int // of those, how many have their dunning paused
	// Entered counts the times a subscription went past_due in [since, until]; Recovered how many of
	// those recovered by until.
	Entered, Recovered int
	// AtRisk is what delinquent subscriptions owe (open and written-off invoices), per currency.
	AtRisk []AmountDue
}

// DelinquencyOverview summarizes delinquency now, and recovery over [since, until].
func (s *Service) DelinquencyOverview(ctx context.Context, since, until time.Time) (DelinquencyOverview, error) {
	q := s.q(s.pool)
	out := DelinquencyOverview{ByState: map[string]int{}, AtRisk: []AmountDue{}}
	counts, err := q.DelinquentCounts(ctx)
	if err != nil {
		return out, err
	}
	for _, row := range counts {
		out.ByState[row.Status] = int(row.N)
	}
	paused, err := q.PausedDunningCount(ctx)
	if err != nil {
		return out, err
	}
	out.PausedDunning = int(paused)
	rate, err := q.RecoveryRate(ctx, store.RecoveryRateParams{Since: since, Until: until})
	if err != nil {
		return out, err
	}
	out.Entered, out.Recovered = int(rate.Entered), int(rate.Recovered)
	risk, err := q.AmountAtRisk(ctx)
	if err != nil {
		return out, err
	}
	for _, row := range risk {
		out.AtRisk = append(out.AtRisk, AmountDue{Amount: money.String(row.Amount, row.Currency), Currency: row.Currency})
	}
	return out, nil
}
