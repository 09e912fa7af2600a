package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
	"github.com/dunningworks/billing/statemachine"
)

// EvtSubscriptionRenewalUpcoming tells that a subscription renews (or its free trial becomes paid) in a
// few days: at renews_at, for amount (tax included). Package mail sends the customer the notice.
const EvtSubscriptionRenewalUpcoming = "subscription.renewal_upcoming"

// DefaultTrialEndNoticeDays is how many days before a free trial converts to paid its subscriber is told,
// unless the plan says otherwise (Korean e-commerce law asks for a notice before the conversion).
const DefaultTrialEndNoticeDays = 7

// MaxNoticeDays bounds a plan's notice windows.
const MaxNoticeDays = 90

// SendRenewalNotices records the upcoming-renewal notices due at the domain clock's now, up to limit: one
// subscription.renewal_upcoming event per (subscription, renewal), fenced by renewal_notices' primary
// key in the event's own transaction, so concurrent sweeps, replicas and restarts tell a customer once
// per renewal. It returns how many notices it recorded.
func (s *Service) SendRenewalNotices(ctx context.Context, limit int) (int, error) {
	now := s.clock.Now()
	due, err := s.q(s.pool).DueRenewalNotices(ctx, store.DueRenewalNoticesParams{Now: now, Max: int32(limit)})
	if err != nil {
		return 0, fmt.Errorf("due renewal notices: %w", err)
	}
	n := 0
	for _, d := range due {
		told, err := s.sendRenewalNotice(ctx, d.ID, d.RenewsAt, now)
		if err != nil {
			return n, fmt.Errorf("renewal notice for %s: %w", d.ID, err)
		}
		if told {
			n++
		}
	}
	return n, nil
}

// NextRenewalNotice is the earliest time after `after` at which a notice falls due, and false if none
// will (the test clock's advance stops there, so a notice is sent at its own date).
func (s *Service) NextRenewalNotice(ctx context.Context, after time.Time) (time.Time, bool, error) {
	t, err := s.q(s.pool).NextRenewalNoticeTime(ctx, after)
	if err != nil {
		return time.Time{}, false, err
	}
	if t.Year() >= 9999 {
		return time.Time{}, false, nil
	}
	return t.UTC(), true, nil
}

// sendRenewalNotice tells one subscription about its renewal at renewsAt, unless that renewal was told
// already or the subscription no longer renews then.
func (s *Service) sendRenewalNotice(ctx context.Context, subID string, renewsAt, now time.Time) (bool, error) {
	told := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		sub, err := s.q(tx).LockSubscription(ctx, subID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		trial := sub.Status == string(statemachine.SubscriptionTrialing)
		if sub.NextRenewalAt == nil || !sub.NextRenewalAt.Equal(renewsAt) || !sub.NextRenewalAt.After(now) || sub.CancelAtPeriodEnd ||
			(!trial && sub.Status != string(statemachine.SubscriptionActive)) {
			return nil // it changed since the sweep read it
		}
		claimed, err := s.q(tx).ClaimRenewalNotice(ctx, store.ClaimRenewalNoticeParams{SubscriptionID: sub.ID, RenewsAt: renewsAt,
			Trial: trial, Now: now})
		if err != nil || claimed == 0 {
			return err // told already (a concurrent sweep waited here for the teller's commit)
		}
		c, plan, qty, err := s.upcomingCharge(ctx, tx, sub)
		if err != nil {
			return err
		}
		told = true
		return s.emit(ctx, tx, EvtSubscriptionRenewalUpcoming, Refs{CustomerID: sub.CustomerID, SubscriptionID: sub.ID}, now, map[string]any{
			"renews_at": renewsAt, "trial": trial, "plan_id": plan.ID, "quantity": qty, "currency": c.Currency,
			"amount": money.String(c.Total, c.Currency), "tax": money.String(c.Tax, c.Currency),
			"credit_applied": money.String(c.CreditApplied, c.Currency), "amount_due": money.String(c.AmountDue, c.Currency),
		})
	})
	return told && err == nil, err
}

// upcomingCharge prices the invoice the subscription's next renewal would create now: the plan it
// renews on (a pending change applies at the renewal), its coupon, its tax rate and the customer's
// credit, exactly as Renew prices it. Pricing counts a coupon period, so it runs in a savepoint that is
// rolled back: nothing is written.
func (s *Service) upcomingCharge(ctx context.Context, tx pgx.Tx, sub store.Subscription) (Composition, store.Plan, int, error) {
	planID := sub.PlanID
	if sub.PendingPlanID != nil {
		planID = *sub.PendingPlanID
		if sub.PendingQuantity != nil {
			sub.Quantity = *sub.PendingQuantity
		}
	}
	plan, err := s.q(tx).GetPlan(ctx, planID)
	if err != nil {
		return Composition{}, plan, 0, err
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return Composition{}, plan, 0, err
	}
	defer func() { _ = sp.Rollback(ctx) }()
	start := sub.CurrentPeriodEnd
	draft, err := s.periodDraft(ctx, sp, sub, plan, "renewal", start, PeriodEnd(start, Interval(plan.Interval), int(plan.IntervalCount), 1))
	if err != nil {
		return Composition{}, plan, 0, err
	}
	balance, err := s.q(sp).CreditBalance(ctx, store.CreditBalanceParams{Account: CreditAccount(sub.CustomerID), Currency: draft.Currency})
	if err != nil {
		return Composition{}, plan, 0, err
	}
	c, err := Compose(ComposeInput{Currency: draft.Currency, Lines: draft.Lines, CreditAvailable: decimal.Max(decimal.Zero, balance.Neg())})
	return c, plan, int(sub.Quantity), err
}
