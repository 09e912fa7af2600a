package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/statemachine"
)

// ResolveOptions tune ResolveAttempt.
type ResolveOptions struct {
	// Now resolves at once instead of waiting for the attempt's next lookup time (a customer is looking:
	// the "stuck cart" read, or a webhook hint).
	Now bool
	// SenderGone says the request that sent the attempt has ended (a retried request whose first run died
	// between sending and recording): nobody else will record the answer, so an early lookup goes ahead
	// however recent the send, and resends an order the gateway has not seen.
	SenderGone bool
	// LeaveInFlight, for a read (a customer's GET), leaves alone a pending attempt sent less than a
	// minute ago: its sender is waiting for the answer and records it. A webhook hint does look such an
	// attempt up: the gateway just said it has the order, while the sender may be waiting on a lost answer.
	LeaveInFlight bool
}

// ResolveAttempt settles an attempt whose outcome is pending or unknown by asking the gateway for the
// order. If the gateway never saw the order, the same attempt is resent with the same order id and
// idempotency key: the gateway charges an order id at most once, so a resend can never double-charge,
// and an attempt is never abandoned while money might have moved.
func (s *Service) ResolveAttempt(ctx context.Context, attemptID string, opts ResolveOptions) (ChargeResult, error) {
	att, err := s.q(s.pool).GetAttempt(ctx, attemptID)
	if errors.Is(err, pgx.ErrNoRows) {
		return ChargeResult{}, nil
	}
	if err != nil {
		return ChargeResult{}, err
	}
	if att.Status != string(statemachine.AttemptPending) && att.Status != string(statemachine.AttemptUnknown) {
		return resultFromAttempt(att), nil
	}
	if breakReconciler {
		return resultFromAttempt(att), nil
	}
	if !opts.Now && att.NextLookupAt != nil && att.NextLookupAt.After(s.clock.Now()) {
		return resultFromAttempt(att), nil
	}
	sentRecently := att.SentAt != nil && s.clock.Now().Sub(*att.SentAt) < lookupDelay(0) && !opts.SenderGone
	if opts.Now && opts.LeaveInFlight && att.Status == string(statemachine.AttemptPending) && sentRecently {
		// Sent less than a minute ago and still pending: its sender is waiting for the answer and records
		// it. A read's lookup now would only race that (on a billing day, every read of a renewing
		// subscription would ask the gateway and wait on the batch's locks); the scheduled lookup covers
		// a sender that died.
		return resultFromAttempt(att), nil
	}
	// An extra lookup (a customer is looking, a webhook hinted) that is inconclusive leaves the
	// reconciler's schedule as it was.
	inconclusive := func(reason string) (ChargeResult, error) {
		if opts.Now {
			return resultFromAttempt(att), nil
		}
		return s.bumpLookup(ctx, att, reason)
	}
	gw, ok := s.gateways.Get(att.Gateway)
	if !ok {
		return inconclusive("gateway " + att.Gateway + " is not enabled")
	}
	out, err := gw.Lookup(ctx, att.OrderID)
	if errors.Is(err, gateway.ErrTryLater) && !opts.Now {
		// The lookup was never sent (open circuit, rate limit): it does not count as one of the
		// schedule's lookups; try again shortly.
		return s.deferLookup(ctx, att, time.Minute, "lookup not sent: "+err.Error())
	}
	if err != nil {
		return inconclusive("lookup failed: " + err.Error())
	}
	switch out.Kind {
	case gateway.Succeeded, gateway.Declined, gateway.Canceled:
		return s.recordOutcome(ctx, att.ID, out)
	case gateway.NotFound:
		held, err := s.resendHeld(ctx, att)
		if err != nil {
			return ChargeResult{}, err
		}
		if opts.Now && sentRecently {
			// An early lookup (a customer's GET, a support retry, a webhook hint) settles what the gateway
			// has, but does not resend an order sent less than the schedule's first delay ago: that send may
			// still be on its way (a batch's charge queued behind others, a slow connection), and the
			// scheduled lookup takes "not found" to mean it never arrived only once its time has run out.
			// An attempt never sent (send_count 0, a process that died before the call) is sent at once.
			return inconclusive("not found at the gateway yet; the send may still be on its way")
		}
		if held {
			// The gateway has never seen the order, so a resend would be the charge's first arrival there:
			// a dunning pause holds it. Lookups go on (money that moves is still found); the resume looks the
			// attempt up at once and resends it then (pause.go).
			return inconclusive("not found at the gateway; the resend waits for dunning to resume")
		}
		// The gateway has no such order: the request never arrived (or is still on its way, in which
		// case the resend is refused as a duplicate and looked up). Resend the same attempt.
		s.log.Info("attempt not found at gateway; resending the same order", "attempt_id", att.ID, "order_id", att.OrderID)
		res, err := s.resend(ctx, att)
		if err != nil {
			return res, err
		}
		return res, nil
	case gateway.Refused:
		// Our credentials were refused: the order's fate stays unknown (money may have moved), so the
		// attempt stays unknown and is looked up again on the schedule; the refusal is counted and alerted.
		return inconclusive("lookup refused by the gateway (merchant side): " + out.Message)
	default:
		return inconclusive("lookup inconclusive: " + out.Reason)
	}
}

func (s *Service) resend(ctx context.Context, att store.PaymentAttempt) (ChargeResult, error) {
	if breakResend {
		att.OrderID += "r"
		att.IdempotencyKey += "r"
	}
	out, err := s.charge(ctx, att)
	if err != nil {
		return s.recordNotSent(ctx, att.ID, err)
	}
	return s.recordOutcome(ctx, att.ID, out)
}

// bumpLookup schedules the next lookup of an unresolved attempt on the reconciler's backoff.
func (s *Service) bumpLookup(ctx context.Context, att store.PaymentAttempt, reason string) (ChargeResult, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		lc, err := s.lockForOutcome(ctx, tx, att.ID)
		if err != nil {
			return err
		}
		if lc.att.Status != string(statemachine.AttemptPending) && lc.att.Status != string(statemachine.AttemptUnknown) {
			return nil
		}
		lc.att.LookupCount++
		return s.applyUnknown(ctx, tx, lc, reason, now)
	})
	if err != nil {
		return ChargeResult{}, fmt.Errorf("reschedule lookup of %s: %w", att.ID, err)
	}
	return ChargeResult{AttemptID: att.ID, Outcome: gateway.Unknown}, nil
}

// ResolveStuckForSubscription looks up, at once, any unresolved attempt of the subscription: a customer
// who closed the app mid-payment sees the true state when they come back.
func (s *Service) ResolveStuckForSubscription(ctx context.Context, subID string) error {
	return s.resolveStuckForSubscription(ctx, subID, ResolveOptions{Now: true, LeaveInFlight: true})
}

func (s *Service) resolveStuckForSubscription(ctx context.Context, subID string, opts ResolveOptions) error {
	atts, err := s.q(s.pool).UnresolvedAttemptsForSubscription(ctx, &subID)
	if err != nil {
		return err
	}
	for _, a := range atts {
		if _, err := s.ResolveAttempt(ctx, a.ID, opts); err != nil {
			return err
		}
	}
	return nil
}

// ResolveStuckForCustomer is ResolveStuckForSubscription for all of a customer's attempts.
func (s *Service) ResolveStuckForCustomer(ctx context.Context, customerID string) error {
	atts, err := s.q(s.pool).UnresolvedAttemptsForCustomer(ctx, customerID)
	if err != nil {
		return err
	}
	for _, a := range atts {
		if _, err := s.ResolveAttempt(ctx, a.ID, ResolveOptions{Now: true, LeaveInFlight: true}); err != nil {
			return err
		}
	}
	return nil
}

// deferLookup moves an unresolved attempt's next lookup to now+after without advancing its schedule.
func (s *Service) deferLookup(ctx context.Context, att store.PaymentAttempt, after time.Duration, reason string) (ChargeResult, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		lc, err := s.lockForOutcome(ctx, tx, att.ID)
		if err != nil {
			return err
		}
		if lc.att.Status != string(statemachine.AttemptPending) && lc.att.Status != string(statemachine.AttemptUnknown) {
			return nil
		}
		next := now.Add(after)
		if _, err := s.q(tx).ResolveAttempt(ctx, store.ResolveAttemptParams{ID: att.ID, FromStatus: lc.att.Status, Status: lc.att.Status,
			FailureReason: &reason, NextLookupAt: &next, LookupCount: lc.att.LookupCount}); err != nil {
			return err
		}
		return s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkResolveAttempt, ID: att.ID, At: next})
	})
	return ChargeResult{AttemptID: att.ID, Outcome: gateway.Unknown}, err
}
