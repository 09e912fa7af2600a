package billing

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/statemachine"
)

// renewable are the statuses whose subscriptions renew; the others wait (paused, suspended, unpaid,
// incomplete) or have ended.
func renewable(status string) bool {
	switch statemachine.SubscriptionStatus(status) {
	case statemachine.SubscriptionActive, statemachine.SubscriptionTrialing, statemachine.SubscriptionPastDue:
		return true
	}
	return false
}

// Renew moves a due subscription into its next period: it applies a pending plan change, creates and
// finalizes the period's invoice (once: the (subscription, period) unique index is the fence), persists
// the charge attempt and commits, then charges. While support has paused the subscription's dunning the
// invoice is created and its charge waits for the resume (pause.go). Running it twice changes nothing the second time: the
// period has moved on, so the subscription is no longer due.
func (s *Service) Renew(ctx context.Context, subID string) (ChargeResult, error) {
	var att store.PaymentAttempt
	var res ChargeResult
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		sub, err := s.q(tx).LockSubscription(ctx, subID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if sub.NextRenewalAt == nil || sub.NextRenewalAt.After(now) || !renewable(sub.Status) {
			return nil
		}
		refs := Refs{CustomerID: sub.CustomerID, SubscriptionID: sub.ID}
		if sub.CancelAtPeriodEnd {
			next, err := fireSub(ctx, sub.Status, statemachine.SubscriptionCancel)
			if err != nil {
				return err
			}
			sp := subParams(sub, now)
			end := sub.CurrentPeriodEnd
			sp.Status, sp.NextRenewalAt, sp.CanceledAt = next, nil, &end
			if _, err := s.saveSubscription(ctx, tx, sp); err != nil {
				return err
			}
			return s.emit(ctx, tx, EvtSubscriptionCanceled, refs, now, map[string]any{"why": "canceled at period end", "reason": deref(sub.CancelReason)})
		}
		sp := subParams(sub, now)
		if sub.PendingPlanID != nil {
			sp.PlanID = *sub.PendingPlanID
			if sub.PendingQuantity != nil {
				sp.Quantity = *sub.PendingQuantity
			}
			sp.PendingPlanID, sp.PendingQuantity = nil, nil
			if err := s.emit(ctx, tx, EvtSubscriptionUpdated, refs, now, map[string]any{"plan_id": sp.PlanID, "quantity": sp.Quantity, "why": "pending change applied at renewal"}); err != nil {
				return err
			}
		}
		plan, err := s.q(tx).GetPlan(ctx, sp.PlanID)
		if err != nil {
			return err
		}
		unit, count := Interval(plan.Interval), int(plan.IntervalCount)
		start := sub.CurrentPeriodEnd
		anchor := sub.BillingAnchor
		if sp.PlanID != sub.PlanID {
			old, err := s.q(tx).GetPlan(ctx, sub.PlanID)
			if err != nil {
				return err
			}
			if old.Interval != plan.Interval || old.IntervalCount != plan.IntervalCount {
				anchor = start // a new rhythm starts at this renewal
			}
		}
		end := PeriodEnd(anchor, unit, count, periodIndexAt(anchor, unit, count, start))
		if !end.After(start) {
			end = PeriodEnd(start, unit, count, 1)
		}
		sp.CurrentPeriodStart, sp.CurrentPeriodEnd, sp.NextRenewalAt = start, end, &end
		sp.BillingAnchor = anchor
		if sub.TrialEnd != nil && !sub.TrialEnd.After(start) && sub.Status == string(statemachine.SubscriptionTrialing) {
			// The trial is over; the subscription becomes active when this invoice is paid.
			sp.BillingAnchor = start
		}
		row, err := s.saveSubscription(ctx, tx, sp)
		if err != nil {
			return err
		}
		sub.Quantity = row.Quantity
		draft, err := s.periodDraft(ctx, tx, row, plan, "renewal", start, end)
		if err != nil {
			return err
		}
		inv, _, err := s.createFinalizedInvoice(ctx, tx, draft, now)
		if err != nil {
			return err
		}
		if err := s.emit(ctx, tx, EvtSubscriptionRenewed, Refs{CustomerID: sub.CustomerID, SubscriptionID: sub.ID, InvoiceID: inv.ID}, now,
			map[string]any{"period_start": start, "period_end": end}); err != nil {
			return err
		}
		if err := s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkRenew, ID: sub.ID, At: end}); err != nil {
			return err
		}
		if inv.Status != string(statemachine.InvoiceOpen) {
			if inv.Status == string(statemachine.InvoicePaid) {
				return s.onInvoicePaid(ctx, tx, row, inv, now)
			}
			return nil
		}
		if since, paused := pausedSince(row, now); paused {
			// Support paused dunning: the period is invoiced, and its charge waits for the resume.
			return s.holdCharge(ctx, tx, inv, since)
		}
		att, res, err = s.newAttempt(ctx, tx, inv, now)
		return err
	})
	if err != nil || att.ID == "" {
		return res, err
	}
	return s.send(ctx, att)
}
