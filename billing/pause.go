package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/statemachine"
)

// A dunning pause (support's pause-dunning) holds every charge of the subscription: no renewal charge, no
// retry, no technical retry, no charge because a new card arrived, no support retry, and no resend of an
// attempt the gateway has never seen. What waits is collected when dunning resumes. Lookups go on: they move
// no money, and they book money that already moved. docs/dunning.md, "Pausing dunning", has the reasons.
//
// On the dunning clock a pause is a stretch of time that does not count: resuming moves every pending
// dunning time later by the pause's length. A charge that fell due during the pause for a reason outside
// dunning (a renewal, a new card) is given the pause's start as its due time, so the resume moves it
// exactly to the resume.

// dunningPaused reports whether sub's dunning clock is stopped at now.
func dunningPaused(sub store.Subscription, now time.Time) bool {
	return sub.DunningPaused && (sub.DunningPausedUntil == nil || sub.DunningPausedUntil.After(now))
}

// pausedSince is when sub's dunning clock stopped, and whether it is stopped at now.
func pausedSince(sub store.Subscription, now time.Time) (time.Time, bool) {
	if !dunningPaused(sub, now) {
		return time.Time{}, false
	}
	if sub.DunningPausedAt != nil {
		return *sub.DunningPausedAt, true
	}
	return now, true
}

// holdCharge leaves an open invoice uncharged while its subscription's dunning is paused: due at the
// pause's start, which the resume turns into the resume. The caller holds the invoice's lock. No job is
// scheduled: the sweeper skips paused subscriptions' invoices, and the resume schedules the collection.
func (s *Service) holdCharge(ctx context.Context, tx pgx.Tx, inv store.Invoice, since time.Time) error {
	p := invoiceParams(inv)
	p.NextAttemptAt = &since
	if _, err := s.q(tx).UpdateInvoice(ctx, p); err != nil {
		return fmt.Errorf("hold invoice %s while dunning is paused: %w", inv.ID, err)
	}
	s.log.Info("charge held: dunning is paused", "invoice_id", inv.ID, "subscription_id", deref(inv.SubscriptionID))
	return nil
}

// resendHeld reports whether the attempt's subscription has dunning paused now. Resending an order the
// gateway has never seen would be the charge's first arrival there, so the pause holds it.
func (s *Service) resendHeld(ctx context.Context, att store.PaymentAttempt) (bool, error) {
	inv, err := s.q(s.pool).GetInvoice(ctx, att.InvoiceID)
	if err != nil || inv.SubscriptionID == nil {
		return false, err
	}
	sub, err := s.q(s.pool).GetSubscription(ctx, *inv.SubscriptionID)
	if err != nil {
		return false, err
	}
	return dunningPaused(sub, s.clock.Now()), nil
}

// lookUpHeldAttempts makes the subscription's unresolved attempts due for a lookup now (at the resume): a
// resend the pause held goes out if the gateway still has not seen the order. The caller holds the
// subscription's lock.
func (s *Service) lookUpHeldAttempts(ctx context.Context, tx pgx.Tx, subID string, now time.Time) ([]Work, error) {
	ids, err := s.q(tx).LookUpSubscriptionAttemptsNow(ctx, store.LookUpSubscriptionAttemptsNowParams{Now: &now, SubscriptionID: &subID})
	if err != nil {
		return nil, err
	}
	work := make([]Work, 0, len(ids))
	for _, id := range ids {
		work = append(work, Work{Kind: WorkResolveAttempt, ID: id, At: now})
	}
	return work, nil
}

// dunningPausedError refuses a charge support asked for while the subscription's dunning is paused.
func dunningPausedError(sub store.Subscription, inv store.Invoice) error {
	until := "until resumed by hand"
	if sub.DunningPausedUntil != nil {
		until = "until " + sub.DunningPausedUntil.UTC().Format(time.RFC3339)
	}
	return &apperr.Error{Kind: apperr.KindConflict, Code: "dunning_paused",
		Message: fmt.Sprintf("cannot retry invoice %s: dunning is paused on subscription %s (%s); POST /v1/support/subscriptions/%s/resume-dunning "+
			"resumes it and charges what waits", inv.ID, sub.ID, until, sub.ID),
		Extra: map[string]any{"state": "dunning_paused", "subscription_id": sub.ID,
			"allowed": InvoiceSupportActionsWhilePaused(inv.Status, inv.AmountPaid)}}
}

// InvoiceSupportActionsWhilePaused is InvoiceSupportActions for an invoice whose subscription's dunning is
// paused: everything but retry, which the pause holds.
func InvoiceSupportActionsWhilePaused(status string, amountPaid decimal.Decimal) []string {
	out := []string{}
	for _, a := range InvoiceSupportActions(status, amountPaid) {
		if a != ActionRetry {
			out = append(out, a)
		}
	}
	return out
}

// resumeDue ends sub's pause if its `until` has come (called by the dunning-end step, which the pause
// scheduled for that time). It returns the subscription as it is afterwards.
func (s *Service) resumeDue(ctx context.Context, tx pgx.Tx, sub store.Subscription, now time.Time) (store.Subscription, error) {
	if !sub.DunningPaused || sub.DunningPausedUntil == nil || sub.DunningPausedUntil.After(now) {
		return sub, nil
	}
	return s.resumeDunning(ctx, tx, sub, *sub.DunningPausedUntil)
}

// resumeDunning clears the pause and moves the grace end, the dunning end and every open invoice's next
// retry later by the time the pause lasted (from its start to `at`), then schedules them again: a charge the
// pause held (due at its start) is due at `at`, and unresolved attempts are looked up now.
// The caller holds the subscription's lock; invoices are locked after it, in the usual order.
func (s *Service) resumeDunning(ctx context.Context, tx pgx.Tx, sub store.Subscription, at time.Time) (store.Subscription, error) {
	var shift time.Duration
	if sub.DunningPausedAt != nil && at.After(*sub.DunningPausedAt) {
		shift = at.Sub(*sub.DunningPausedAt)
	}
	later := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		v := t.Add(shift)
		return &v
	}
	now := s.clock.Now()
	sp := subParams(sub, now)
	sp.DunningPaused, sp.DunningPausedUntil = false, nil
	var work []Work
	if sub.Status == string(statemachine.SubscriptionPastDue) && sub.GraceEndsAt != nil {
		sp.GraceEndsAt = later(sub.GraceEndsAt)
		work = append(work, Work{Kind: WorkGraceEnd, ID: sub.ID, At: *sp.GraceEndsAt})
	}
	if sub.DunningEndsAt != nil {
		sp.DunningEndsAt = later(sub.DunningEndsAt)
		work = append(work, Work{Kind: WorkDunningEnd, ID: sub.ID, At: *sp.DunningEndsAt})
	}
	row, err := s.saveSubscription(ctx, tx, sp)
	if err != nil {
		return row, err
	}
	if err := s.q(tx).SetDunningPausedAt(ctx, store.SetDunningPausedAtParams{ID: sub.ID}); err != nil {
		return row, err
	}
	open, err := s.q(tx).OpenInvoicesForSubscription(ctx, &sub.ID)
	if err != nil {
		return row, err
	}
	for _, o := range open {
		if o.NextAttemptAt == nil {
			continue
		}
		inv, err := s.q(tx).LockInvoice(ctx, o.ID)
		if err != nil {
			return row, err
		}
		if inv.NextAttemptAt == nil || inv.Status != string(statemachine.InvoiceOpen) {
			continue
		}
		p := invoiceParams(inv)
		p.NextAttemptAt = later(inv.NextAttemptAt)
		if _, err := s.q(tx).UpdateInvoice(ctx, p); err != nil {
			return row, err
		}
		work = append(work, Work{Kind: WorkCollect, ID: inv.ID, At: *p.NextAttemptAt})
	}
	lookups, err := s.lookUpHeldAttempts(ctx, tx, sub.ID, now)
	if err != nil {
		return row, err
	}
	return row, s.sched.ScheduleTx(ctx, tx, append(work, lookups...)...)
}
