package billing

import (
	"context"
	"time"

	"github.com/dunningworks/billing/internal/store"
)

// DueWork lists the domain work due at now, up to max of each kind, straight from the columns that are
// the source of truth. The sweeper enqueues it; jobs that already exist are not duplicated (their
// uniqueness is per entity and step), and jobs that were lost are recreated.
func (s *Service) DueWork(ctx context.Context, now time.Time, max int) ([]Work, error) {
	q := s.q(s.pool)
	var out []Work
	lim := int32(max)
	renewals, err := q.DueRenewals(ctx, store.DueRenewalsParams{Now: &now, Max: lim})
	if err != nil {
		return nil, err
	}
	for _, r := range renewals {
		out = append(out, Work{Kind: WorkRenew, ID: r.ID, At: r.DueAt})
	}
	collects, err := q.DueCollections(ctx, store.DueCollectionsParams{Now: &now, Max: lim})
	if err != nil {
		return nil, err
	}
	for _, r := range collects {
		out = append(out, Work{Kind: WorkCollect, ID: r.ID, At: r.DueAt})
	}
	lookups, err := q.DueAttemptLookups(ctx, store.DueAttemptLookupsParams{Now: &now, Max: lim})
	if err != nil {
		return nil, err
	}
	for _, r := range lookups {
		out = append(out, Work{Kind: WorkResolveAttempt, ID: r.ID, At: r.DueAt})
	}
	graces, err := q.DueGraceEnds(ctx, store.DueGraceEndsParams{Now: &now, Max: lim})
	if err != nil {
		return nil, err
	}
	for _, r := range graces {
		out = append(out, Work{Kind: WorkGraceEnd, ID: r.ID, At: r.DueAt})
	}
	ends, err := q.DueDunningEnds(ctx, store.DueDunningEndsParams{Now: &now, Max: lim})
	if err != nil {
		return nil, err
	}
	for _, r := range ends {
		out = append(out, Work{Kind: WorkDunningEnd, ID: r.ID, At: r.DueAt})
	}
	expiries, err := q.DueIncompleteExpiries(ctx, store.DueIncompleteExpiriesParams{Now: &now, Max: lim})
	if err != nil {
		return nil, err
	}
	for _, r := range expiries {
		out = append(out, Work{Kind: WorkExpireIncomplete, ID: r.ID, At: r.DueAt})
	}
	refunds, err := q.DueRefundLookups(ctx, store.DueRefundLookupsParams{Now: &now, Max: lim})
	if err != nil {
		return nil, err
	}
	for _, r := range refunds {
		out = append(out, Work{Kind: WorkResolveRefund, ID: r.ID, At: r.DueAt})
	}
	return out, nil
}

// NextDue is the earliest time after `after` at which domain work falls due, and false if none is.
func (s *Service) NextDue(ctx context.Context, after time.Time) (time.Time, bool, error) {
	t, err := s.q(s.pool).NextDueTime(ctx, &after)
	if err != nil {
		return time.Time{}, false, err
	}
	if t.Year() >= 9999 {
		return time.Time{}, false, nil
	}
	return t.UTC(), true, nil
}
