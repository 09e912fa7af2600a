package billing

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/statemachine"
)

// CancelRequest is the input of Cancel.
type CancelRequest struct {
	// AtPeriodEnd keeps the subscription (and its service) until the period it paid for ends; the
	// renewal then cancels instead of charging. False cancels now.
	AtPeriodEnd bool
	Reason      string
	// ExpectVersion, when not 0, is the version the caller last saw (If-Match): a mismatch is 412.
	ExpectVersion int
}

const maxReason = 500

// Cancel ends a subscription now or at its period end. Support's audited cancel wraps this method.
//
// Canceling now fires the state machine's cancel (legal from every live state), stops renewals and
// settles the subscription's open invoices: one on which nothing was collected and no charge is in flight
// is voided (its receivable reversed: the service it billed ends with the cancel); one that was partly
// paid or has a charge whose outcome is not yet known stays open with its automatic retries stopped, for
// support to settle.
func (s *Service) Cancel(ctx context.Context, subID string, req CancelRequest) (Subscription, error) {
	if utf8.RuneCountInString(req.Reason) > maxReason {
		return Subscription{}, apperr.Invalid("reason", "must be at most %d characters", maxReason)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error { return s.cancelIn(ctx, tx, subID, req) })
	if err != nil {
		return Subscription{}, err
	}
	return s.GetSubscription(ctx, subID)
}

// cancelIn is Cancel's transaction: support's audited cancel runs it inside its own, with the audit row.
func (s *Service) cancelIn(ctx context.Context, tx pgx.Tx, subID string, req CancelRequest) error {
	now := s.clock.Now()
	sub, err := s.lockSubscriptionFor(ctx, tx, subID, req.ExpectVersion)
	if err != nil {
		return err
	}
	// Whether canceling is legal at all is the state machine's answer (409 with the allowed triggers).
	next, err := fireSub(ctx, sub.Status, statemachine.SubscriptionCancel)
	if err != nil {
		return err
	}
	refs := Refs{CustomerID: sub.CustomerID, SubscriptionID: sub.ID}
	sp := subParams(sub, now)
	if req.Reason != "" {
		sp.CancelReason = &req.Reason
	}
	if req.AtPeriodEnd {
		// Only a subscription that renews reaches its period end through the renewal; for the others
		// (paused, suspended, unpaid, incomplete) "at period end" would never happen.
		if !renewable(sub.Status) {
			return notAllowedIn(sub, "cancel_at_period_end_not_allowed",
				"a %s subscription does not renew, so it cannot cancel at its period end; cancel it now", sub.Status)
		}
		if sub.CancelAtPeriodEnd && req.Reason == "" {
			return nil // already scheduled: the same request again changes nothing
		}
		sp.CancelAtPeriodEnd = true
		if _, err := s.saveSubscription(ctx, tx, sp); err != nil {
			return err
		}
		return s.emit(ctx, tx, EvtSubscriptionUpdated, refs, now, map[string]any{"why": "cancel scheduled for the period end",
			"cancel_at_period_end": true, "cancel_at": sub.CurrentPeriodEnd, "reason": req.Reason})
	}
	sp.Status, sp.CanceledAt, sp.NextRenewalAt = string(next), &now, nil
	sp.CancelAtPeriodEnd, sp.PendingPlanID, sp.PendingQuantity = false, nil, nil
	// Nothing of dunning or expiry is still to come for a canceled subscription.
	sp.GraceEndsAt, sp.DunningEndsAt, sp.IncompleteExpiresAt = nil, nil, nil
	if _, err := s.saveSubscription(ctx, tx, sp); err != nil {
		return err
	}
	voided, kept, err := s.settleOpenInvoicesOnCancel(ctx, tx, sub.ID, now)
	if err != nil {
		return err
	}
	return s.emit(ctx, tx, EvtSubscriptionCanceled, refs, now, map[string]any{"why": "canceled", "from": sub.Status,
		"reason": req.Reason, "voided_invoices": voided, "open_invoices": kept})
}

// settleOpenInvoicesOnCancel voids what can be voided and stops retries on the rest. The caller holds the
// subscription lock; invoices are locked after it (the one lock order).
func (s *Service) settleOpenInvoicesOnCancel(ctx context.Context, tx pgx.Tx, subID string, now time.Time) (voided, kept []string, err error) {
	voided, kept = []string{}, []string{}
	open, err := s.q(tx).OpenInvoicesForSubscription(ctx, &subID)
	if err != nil {
		return nil, nil, err
	}
	for _, o := range open {
		inv, err := s.q(tx).LockInvoice(ctx, o.ID)
		if err != nil {
			return nil, nil, err
		}
		_, err = s.q(tx).InFlightAttempt(ctx, inv.ID)
		inFlight := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, nil, err
		}
		if !inFlight && inv.AmountPaid.IsZero() {
			if err := s.voidInvoice(ctx, tx, inv, now); err != nil {
				return nil, nil, err
			}
			voided = append(voided, inv.ID)
			continue
		}
		if inv.NextAttemptAt != nil {
			p := invoiceParams(inv)
			p.NextAttemptAt = nil
			if _, err := s.q(tx).UpdateInvoice(ctx, p); err != nil {
				return nil, nil, err
			}
		}
		kept = append(kept, inv.ID)
	}
	return voided, kept, nil
}

// ResumeCancel withdraws a scheduled cancel at period end: the subscription renews as usual.
func (s *Service) ResumeCancel(ctx context.Context, subID string, expectVersion int) (Subscription, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		sub, err := s.lockSubscriptionFor(ctx, tx, subID, expectVersion)
		if err != nil {
			return err
		}
		if sub.Status == string(statemachine.SubscriptionCanceled) || sub.Status == string(statemachine.SubscriptionIncompleteExpired) {
			return notAllowedIn(sub, "subscription_ended", "the subscription is %s; a cancel that happened cannot be undone", sub.Status)
		}
		if !sub.CancelAtPeriodEnd {
			return notAllowedIn(sub, "cancel_not_scheduled", "the subscription is not set to cancel at its period end")
		}
		sp := subParams(sub, now)
		sp.CancelAtPeriodEnd, sp.CancelReason = false, nil
		if _, err := s.saveSubscription(ctx, tx, sp); err != nil {
			return err
		}
		return s.emit(ctx, tx, EvtSubscriptionUpdated, Refs{CustomerID: sub.CustomerID, SubscriptionID: sub.ID}, now,
			map[string]any{"why": "scheduled cancel withdrawn", "cancel_at_period_end": false})
	})
	if err != nil {
		return Subscription{}, err
	}
	return s.GetSubscription(ctx, subID)
}

// Pause stops service and renewals of an active subscription. next_renewal_at is kept, but paused
// subscriptions are not renewed (the due-renewal scan only takes live, billing statuses). A pause does not
// extend the period: time paid for and spent paused is not credited back.
func (s *Service) Pause(ctx context.Context, subID string, expectVersion int) (Subscription, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		sub, err := s.lockSubscriptionFor(ctx, tx, subID, expectVersion)
		if err != nil {
			return err
		}
		next, err := fireSub(ctx, sub.Status, statemachine.SubscriptionPause)
		if err != nil {
			return err
		}
		sp := subParams(sub, now)
		sp.Status, sp.PausedAt = string(next), &now
		if _, err := s.saveSubscription(ctx, tx, sp); err != nil {
			return err
		}
		return s.emit(ctx, tx, EvtSubscriptionPaused, Refs{CustomerID: sub.CustomerID, SubscriptionID: sub.ID}, now, nil)
	})
	if err != nil {
		return Subscription{}, err
	}
	return s.GetSubscription(ctx, subID)
}

// Resume makes a paused subscription active again. If its period ended while it was paused, a new
// period starts at the resume and is renewed (invoiced and charged) right away: the customer pays from
// the moment service comes back, never for the paused time, and the billing anchor moves to the resume.
// A pending plan change or a scheduled cancel is applied by that renewal as at any period end.
func (s *Service) Resume(ctx context.Context, subID string, expectVersion int) (Subscription, error) {
	renewNow := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		sub, err := s.lockSubscriptionFor(ctx, tx, subID, expectVersion)
		if err != nil {
			return err
		}
		next, err := fireSub(ctx, sub.Status, statemachine.SubscriptionResume)
		if err != nil {
			return err
		}
		sp := subParams(sub, now)
		sp.Status, sp.PausedAt = string(next), nil
		data := map[string]any{"paused_at": sub.PausedAt}
		if sub.NextRenewalAt != nil && !sub.NextRenewalAt.After(now) {
			// The paused-through period closes now and the renewal starts the next one here.
			sp.BillingAnchor, sp.CurrentPeriodEnd, sp.NextRenewalAt = now, now, &now
			data["renewed_at"] = now
			renewNow = true
		}
		row, err := s.saveSubscription(ctx, tx, sp)
		if err != nil {
			return err
		}
		if err := s.emit(ctx, tx, EvtSubscriptionResumed, Refs{CustomerID: sub.CustomerID, SubscriptionID: sub.ID}, now, data); err != nil {
			return err
		}
		if row.NextRenewalAt != nil && !renewNow {
			return s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkRenew, ID: row.ID, At: *row.NextRenewalAt})
		}
		return nil
	})
	if err != nil {
		return Subscription{}, err
	}
	if renewNow {
		// Renewing here answers with the charged period. No job is enqueued for it: one racing this call
		// would renew first and leave the answer with the charge still in flight. If this process dies
		// or the renewal fails, the subscription is still due, and the sweeper enqueues it.
		if _, err := s.Renew(ctx, subID); err != nil {
			s.log.Warn("renewal at resume failed; the sweeper enqueues it again", "subscription_id", subID, "err", err)
		}
	}
	return s.GetSubscription(ctx, subID)
}
