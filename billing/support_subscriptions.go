package billing

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/statemachine"
)

// SupportCancel is a person's cancel: Cancel's own transaction plus the audit row, and a reason is
// required. Canceling a subscription that is already canceled is a no-op; other refusals are Cancel's.
func (s *Service) SupportCancel(ctx context.Context, a Actor, subID string, req CancelRequest) (Subscription, error) {
	return s.subscriptionAction(ctx, a, ActionCancel, subID, req.ExpectVersion, req.Reason, func(tx pgx.Tx, sub store.Subscription, now time.Time) (store.Subscription, bool, error) {
		if sub.Status == string(statemachine.SubscriptionCanceled) {
			return sub, false, nil
		}
		req.ExpectVersion = 0 // checked above, under the same lock
		if err := s.cancelIn(ctx, tx, subID, req); err != nil {
			return sub, false, err
		}
		after, err := s.q(tx).GetSubscription(ctx, subID)
		return after, err == nil && after.Version != sub.Version, err
	})
}

// ExtendGrace keeps a past_due subscription's service on until `until`. The dunning window is stretched
// to cover it when needed (the final action never comes before grace ends). Only past_due qualifies: a
// suspended subscription's grace is over, and giving service back needs a payment (or a void), since the
// subscription machine has no suspended -> past_due edge. Extending to the current grace end is a no-op;
// shortening grace is refused.
func (s *Service) ExtendGrace(ctx context.Context, a Actor, subID string, expectVersion int, until time.Time, reason string) (Subscription, error) {
	until = until.UTC()
	return s.subscriptionAction(ctx, a, ActionExtendGrace, subID, expectVersion, reason, func(tx pgx.Tx, sub store.Subscription, now time.Time) (store.Subscription, bool, error) {
		if sub.Status != string(statemachine.SubscriptionPastDue) {
			return sub, false, notAllowed(ActionExtendGrace, "subscription", sub.ID, sub.Status, SubscriptionSupportActions(sub.Status, sub.DunningPaused))
		}
		if sub.GraceEndsAt != nil && sub.GraceEndsAt.Equal(until) {
			return sub, false, nil
		}
		if err := checkHorizon("until", until, now); err != nil {
			return sub, false, err
		}
		if sub.GraceEndsAt != nil && until.Before(*sub.GraceEndsAt) {
			return sub, false, apperr.Invalid("until", "must be after the current grace end %s: grace can be extended, not shortened", sub.GraceEndsAt.Format(time.RFC3339))
		}
		sp := subParams(sub, now)
		sp.GraceEndsAt = &until
		work := []Work{{Kind: WorkGraceEnd, ID: sub.ID, At: until}}
		if sub.DunningEndsAt == nil || sub.DunningEndsAt.Before(until) {
			sp.DunningEndsAt = &until
			work = append(work, Work{Kind: WorkDunningEnd, ID: sub.ID, At: until})
		}
		row, err := s.saveSubscription(ctx, tx, sp)
		if err != nil {
			return row, false, err
		}
		return row, true, s.sched.ScheduleTx(ctx, tx, work...)
	})
}

// PauseDunning stops a delinquent subscription's dunning clock and holds its charges: no retry, grace end
// or final action happens while it is paused, and no charge of any kind reaches the gateway (a renewal is
// invoiced and waits; pause.go). It resumes by
// hand or at `until` (nil: only by hand), and resuming moves every pending dunning deadline later by
// the time the pause lasted. Pausing again with the same `until` is a no-op; another `until` replaces it.
func (s *Service) PauseDunning(ctx context.Context, a Actor, subID string, expectVersion int, until *time.Time, reason string) (Subscription, error) {
	if until != nil {
		u := until.UTC()
		until = &u
	}
	return s.subscriptionAction(ctx, a, ActionPauseDunning, subID, expectVersion, reason, func(tx pgx.Tx, sub store.Subscription, now time.Time) (store.Subscription, bool, error) {
		return s.pauseDunningIn(ctx, tx, sub, until, now)
	})
}

// pauseDunningIn is PauseDunning's change in the caller's transaction, which holds sub's lock and writes
// the audit row: support's pause-dunning, and the pauses a customer's dunning exemption makes
// (dunning_override.go). changed is false for a no-op (already paused with the same `until`).
func (s *Service) pauseDunningIn(ctx context.Context, tx pgx.Tx, sub store.Subscription, until *time.Time, now time.Time) (row store.Subscription, changed bool, err error) {
	st := statemachine.SubscriptionStatus(sub.Status)
	if st != statemachine.SubscriptionPastDue && st != statemachine.SubscriptionSuspended {
		return sub, false, notAllowed(ActionPauseDunning, "subscription", sub.ID, sub.Status, SubscriptionSupportActions(sub.Status, sub.DunningPaused))
	}
	if sub.DunningPaused && sameTime(sub.DunningPausedUntil, until) {
		return sub, false, nil
	}
	if until != nil {
		if err := checkHorizon("until", *until, now); err != nil {
			return sub, false, err
		}
	}
	wasPaused := sub.DunningPaused
	sp := subParams(sub, now)
	sp.DunningPaused, sp.DunningPausedUntil = true, until
	row, err = s.saveSubscription(ctx, tx, sp)
	if err != nil {
		return row, false, err
	}
	if !wasPaused {
		// The clock stopped now; a changed `until` keeps the original start.
		if err := s.q(tx).SetDunningPausedAt(ctx, store.SetDunningPausedAtParams{ID: sub.ID, PausedAt: &now}); err != nil {
			return row, false, err
		}
		row.DunningPausedAt = &now
	}
	if until != nil {
		// The dunning-end step also ends pauses whose time is up (both are the dunning clock's).
		if err := s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkDunningEnd, ID: sub.ID, At: *until}); err != nil {
			return row, false, err
		}
	}
	return row, true, nil
}

// ResumeDunning restarts a paused dunning clock now (see PauseDunning). Resuming a subscription whose
// dunning is not paused is a no-op.
func (s *Service) ResumeDunning(ctx context.Context, a Actor, subID string, expectVersion int, reason string) (Subscription, error) {
	return s.subscriptionAction(ctx, a, ActionResumeDunning, subID, expectVersion, reason, func(tx pgx.Tx, sub store.Subscription, now time.Time) (store.Subscription, bool, error) {
		if !sub.DunningPaused {
			return sub, false, nil
		}
		row, err := s.resumeDunning(ctx, tx, sub, now)
		return row, err == nil, err
	})
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}
