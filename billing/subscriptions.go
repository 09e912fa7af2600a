package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/idem"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
	"github.com/dunningworks/billing/statemachine"
)

// Subscription is API.md's subscription.
type Subscription struct {
	ID                 string         `json:"id"`
	CustomerID         string         `json:"customer_id"`
	PlanID             string         `json:"plan_id"`
	Quantity           int            `json:"quantity"`
	Status             string         `json:"status"`
	Entitled           bool           `json:"entitled"`
	CurrentPeriodStart time.Time      `json:"current_period_start"`
	CurrentPeriodEnd   time.Time      `json:"current_period_end"`
	NextRenewalAt      *time.Time     `json:"next_renewal_at"`
	TrialEnd           *time.Time     `json:"trial_end"`
	CancelAtPeriodEnd  bool           `json:"cancel_at_period_end"`
	CanceledAt         *time.Time     `json:"canceled_at"`
	PendingChange      *PendingChange `json:"pending_change"`
	// Discount is the coupon that prices the next period invoices (nil: none).
	Discount  *SubscriptionDiscount `json:"discount"`
	Dunning   DunningView           `json:"dunning"`
	Version   int                   `json:"version"`
	CreatedAt time.Time             `json:"created_at"`
}

// PendingChange is a plan change waiting for the period end.
type PendingChange struct {
	PlanID      string    `json:"plan_id"`
	Quantity    int       `json:"quantity"`
	EffectiveAt time.Time `json:"effective_at"`
}

// DunningView is the subscription's dunning state.
type DunningView struct {
	Attempts        int        `json:"attempts"`
	NextAttemptAt   *time.Time `json:"next_attempt_at"`
	GraceEndsAt     *time.Time `json:"grace_ends_at"`
	DunningEndsAt   *time.Time `json:"dunning_ends_at"`
	LastDeclineCode *string    `json:"last_decline_code"`
	Paused          bool       `json:"paused"`
	PausedUntil     *time.Time `json:"paused_until"`
}

// NewSubscription is the input of CreateSubscription.
type NewSubscription struct {
	CustomerID string
	PlanID     string
	Quantity   int
	// TrialDays overrides the plan's trial when not nil.
	TrialDays *int
	// Coupon (an id or code) discounts the subscription from its first period invoice.
	Coupon string
	// Idempotency is the request's Idempotency-Key. When set it is recorded with the subscription, in the
	// same transaction, and a retry of the request is answered with that subscription instead of a second
	// one (the same key with another body: 422): the request is safe to run again after a crash.
	Idempotency idem.Request
}

// Created is the result of CreateSubscription: the subscription, its first invoice (nil during a trial)
// and what the first charge did.
type Created struct {
	Subscription Subscription
	Invoice      *Invoice
	Charge       ChargeResult
}

// CreateSubscription starts a subscription. Without a trial the first invoice is charged now with the
// customer's default key: the subscription is active if it succeeds, incomplete otherwise.
func (s *Service) CreateSubscription(ctx context.Context, in NewSubscription) (Created, error) {
	var v apperr.Validation
	if in.CustomerID == "" {
		v.Add("customer_id", "is required")
	}
	if in.PlanID == "" {
		v.Add("plan_id", "is required")
	}
	if in.Quantity == 0 {
		in.Quantity = 1
	}
	if in.Quantity < 1 || in.Quantity > 100000 {
		v.Add("quantity", "must be from 1 to 100000")
	}
	if in.TrialDays != nil && (*in.TrialDays < 0 || *in.TrialDays > 730) {
		v.Add("trial_days", "must be from 0 to 730")
	}
	if err := v.Err(); err != nil {
		return Created{}, err
	}
	if again, ok, err := s.createdBefore(ctx, in.Idempotency); err != nil || ok {
		return again, err
	}
	if err := s.requireCustomer(ctx, s.pool, in.CustomerID); err != nil {
		return Created{}, err
	}
	plan, err := s.getPlan(ctx, s.pool, in.PlanID)
	if apperr.IsKind(err, apperr.KindNotFound) {
		return Created{}, apperr.Invalid("plan_id", "plan %s does not exist", in.PlanID)
	}
	if err != nil {
		return Created{}, err
	}
	trial := int(plan.TrialDays)
	if in.TrialDays != nil {
		trial = *in.TrialDays
	}
	if trial == 0 {
		if _, err := s.vault.ChargeableKey(ctx, s.pool, in.CustomerID); errors.Is(err, ErrNoChargeableKey) {
			return Created{}, &apperr.Error{Kind: apperr.KindValidation, Code: "no_billing_key",
				Message: "the customer has no default billing key to charge; register one first",
				Fields:  []apperr.FieldError{{Field: "customer_id", Message: "has no chargeable billing key"}}}
		} else if err != nil {
			return Created{}, err
		}
	}

	var subID string
	var att store.PaymentAttempt
	var invID string
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		// The customer lock orders this against a default-key change (billingkey checks the currencies of
		// live subscriptions under it), so the key judged here is the one that will be charged.
		if err := LockCustomer(ctx, tx, in.CustomerID); err != nil {
			return err
		}
		if key, err := s.vault.ChargeableKey(ctx, tx, in.CustomerID); err == nil {
			if err := s.keyTakesCurrency(key, plan.Currency, "plan_id",
				"plan %s is billed in %s, which the %s gateway of the customer's default billing key %s does not charge in; register a card at a gateway that does first",
				plan.ID, plan.Currency, key.Gateway, key.ID); err != nil {
				return err
			}
		} else if !errors.Is(err, ErrNoChargeableKey) {
			return err
		}
		now := s.clock.Now()
		unit := Interval(plan.Interval)
		params := store.CreateSubscriptionParams{ID: ids.New("sub"), CustomerID: in.CustomerID, PlanID: plan.ID,
			Quantity: int32(in.Quantity), CreatedAt: now}
		if trial > 0 {
			trialEnd := now.AddDate(0, 0, trial)
			params.Status = string(statemachine.SubscriptionTrialing)
			params.BillingAnchor, params.CurrentPeriodStart, params.CurrentPeriodEnd = trialEnd, now, trialEnd
			params.NextRenewalAt, params.TrialEnd = &trialEnd, &trialEnd
		} else {
			end := PeriodEnd(now, unit, int(plan.IntervalCount), 1)
			ap, err := s.appliedOver(ctx, s.q(tx), in.CustomerID, &plan)
			if err != nil {
				return err
			}
			expires := now.Add(ap.policy.IncompleteExpiry.D())
			params.Status = string(statemachine.SubscriptionIncomplete)
			params.BillingAnchor, params.CurrentPeriodStart, params.CurrentPeriodEnd = now, now, end
			params.NextRenewalAt, params.IncompleteExpiresAt = &end, &expires
		}
		sub, err := s.q(tx).CreateSubscription(ctx, params)
		if err != nil {
			return fmt.Errorf("create subscription: %w", err)
		}
		subID = sub.ID
		if in.Idempotency.Set() {
			n, err := s.q(tx).RecordSubscriptionCreation(ctx, store.RecordSubscriptionCreationParams{IdemKey: in.Idempotency.Identity,
				RequestHash: in.Idempotency.Hash, SubscriptionID: sub.ID, RetentionHours: idem.RetentionHours})
			if err != nil {
				return fmt.Errorf("record subscription creation: %w", err)
			}
			if n == 0 {
				return errRecordedMeanwhile
			}
		}
		if in.Coupon != "" {
			if _, _, err := s.redeem(ctx, tx, sub.ID, in.Coupon, plan, now); err != nil {
				return err
			}
		}
		refs := Refs{CustomerID: sub.CustomerID, SubscriptionID: sub.ID}
		if err := s.emit(ctx, tx, EvtSubscriptionCreated, refs, now, map[string]any{"plan_id": plan.ID, "status": sub.Status}); err != nil {
			return err
		}
		if trial > 0 {
			return s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkRenew, ID: sub.ID, At: *sub.NextRenewalAt})
		}
		if err := s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkExpireIncomplete, ID: sub.ID, At: *sub.IncompleteExpiresAt}); err != nil {
			return err
		}
		draft, err := s.periodDraft(ctx, tx, sub, plan, "initial", sub.CurrentPeriodStart, sub.CurrentPeriodEnd)
		if err != nil {
			return err
		}
		inv, _, err := s.createFinalizedInvoice(ctx, tx, draft, now)
		if err != nil {
			return err
		}
		invID = inv.ID
		if inv.Status == string(statemachine.InvoicePaid) {
			// A free plan: nothing to charge, active at once.
			return s.onInvoicePaid(ctx, tx, sub, inv, now)
		}
		att, _, err = s.newAttempt(ctx, tx, inv, now)
		return err
	})
	if errors.Is(err, errRecordedMeanwhile) || dbx.IsUniqueViolation(err, "subscription_creations_pkey") {
		// The same key was recorded by a concurrent run (its idempotency lock was taken over while the
		// first run still lived): answer with what that run made, and create nothing.
		again, ok, err := s.createdBefore(ctx, in.Idempotency)
		if err == nil && !ok {
			err = fmt.Errorf("create subscription: %w, and its record is gone", errRecordedMeanwhile)
		}
		return again, err
	}
	if err != nil {
		return Created{}, err
	}
	var res ChargeResult
	if att.ID != "" {
		if res, err = s.send(ctx, att); err != nil {
			return Created{}, err
		}
	}
	out := Created{Charge: res}
	if out.Subscription, err = s.GetSubscription(ctx, subID); err != nil {
		return out, err
	}
	if invID != "" {
		inv, err := s.GetInvoice(ctx, invID)
		if err != nil {
			return out, err
		}
		out.Invoice = &inv
	}
	return out, nil
}

// errRecordedMeanwhile: the request's key was recorded by another run while this one was creating.
var errRecordedMeanwhile = errors.New("the idempotency key was recorded by a concurrent run")

// createdBefore answers a retry of a request that already created a subscription (ok=false when none did,
// or when its key was recorded longer ago than the retention): the subscription as it is now, its first
// invoice, and what the first invoice's latest charge did. The same key with another body is 422. An
// attempt the first run left in flight — it was killed between sending and recording — is looked up at the
// gateway now, as a returning customer's GET does, so the answer is as definite as the gateway allows.
func (s *Service) createdBefore(ctx context.Context, req idem.Request) (Created, bool, error) {
	if !req.Set() {
		return Created{}, false, nil
	}
	row, err := s.q(s.pool).SubscriptionByCreation(ctx, store.SubscriptionByCreationParams{IdemKey: req.Identity,
		RetentionHours: idem.RetentionHours})
	if errors.Is(err, pgx.ErrNoRows) {
		return Created{}, false, nil
	}
	if err != nil {
		return Created{}, false, err
	}
	if err := req.Check(row.RequestHash); err != nil {
		return Created{}, true, err
	}
	subID := row.SubscriptionID
	// The key's first run is over (a run still going holds the key, and its retry is answered 409), so
	// whatever it sent and did not record is nobody's to record but this lookup's.
	if err := s.resolveStuckForSubscription(ctx, subID, ResolveOptions{Now: true, SenderGone: true}); err != nil {
		return Created{}, true, err
	}
	var out Created
	inv, err := s.q(s.pool).InitialInvoice(ctx, &subID)
	switch {
	case errors.Is(err, pgx.ErrNoRows): // a trial: no invoice at creation
	case err != nil:
		return out, true, err
	default:
		atts, err := s.q(s.pool).InvoiceAttempts(ctx, inv.ID)
		if err != nil {
			return out, true, err
		}
		if len(atts) > 0 {
			out.Charge = resultFromAttempt(atts[len(atts)-1])
		} else if inv.Status == string(statemachine.InvoiceOpen) {
			out.Charge.NoKey = true // open and never attempted: there was no key to charge
		}
		view, err := s.GetInvoice(ctx, inv.ID)
		if err != nil {
			return out, true, err
		}
		out.Invoice = &view
	}
	out.Subscription, err = s.GetSubscription(ctx, subID)
	return out, true, err
}

// periodInvoice is the draft of a subscription's invoice for one period at the plan's price.
func periodInvoice(sub store.Subscription, plan store.Plan, kind string, start, end time.Time) draftInvoice {
	qty := decimal.NewFromInt32(sub.Quantity)
	amount := money.Round(plan.Amount.Mul(qty), plan.Currency)
	desc := fmt.Sprintf("%s × %d (%s – %s)", plan.Name, sub.Quantity, start.Format("2006-01-02"), end.Format("2006-01-02"))
	return draftInvoice{CustomerID: sub.CustomerID, SubscriptionID: sub.ID, Kind: kind, Currency: plan.Currency,
		PeriodStart: start, PeriodEnd: end, Lines: []draftLine{{Description: desc, PlanID: plan.ID, Quantity: int(sub.Quantity),
			UnitAmount: plan.Amount, Amount: amount, PeriodStart: start, PeriodEnd: end, PeriodAmount: amount}}}
}

// GetSubscription returns a subscription.
func (s *Service) GetSubscription(ctx context.Context, id string) (Subscription, error) {
	row, err := s.q(s.pool).GetSubscription(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Subscription{}, apperr.NotFound("subscription", id)
	}
	if err != nil {
		return Subscription{}, err
	}
	return s.subscriptionView(ctx, s.pool, row)
}

// ListCustomerSubscriptions lists a customer's subscriptions, oldest first.
func (s *Service) ListCustomerSubscriptions(ctx context.Context, customerID string, p page.Request) (page.List[Subscription], error) {
	if err := s.requireCustomer(ctx, s.pool, customerID); err != nil {
		return page.List[Subscription]{}, err
	}
	rows, err := s.q(s.pool).ListCustomerSubscriptions(ctx, store.ListCustomerSubscriptionsParams{CustomerID: customerID,
		Limit: int32(p.Limit + 1), HasCursor: p.HasCursor(), AfterTime: p.AfterTime, AfterID: p.AfterID})
	if err != nil {
		return page.List[Subscription]{}, err
	}
	out := make([]Subscription, 0, len(rows))
	for _, r := range rows {
		v, err := s.subscriptionView(ctx, s.pool, r)
		if err != nil {
			return page.List[Subscription]{}, err
		}
		out = append(out, v)
	}
	return page.Build(out, p.Limit, func(v Subscription) (time.Time, string) { return v.CreatedAt, v.ID }), nil
}

func (s *Service) subscriptionView(ctx context.Context, db dbx.DBTX, r store.Subscription) (Subscription, error) {
	v := Subscription{ID: r.ID, CustomerID: r.CustomerID, PlanID: r.PlanID, Quantity: int(r.Quantity), Status: r.Status,
		Entitled: statemachine.Entitled(statemachine.SubscriptionStatus(r.Status)), CurrentPeriodStart: r.CurrentPeriodStart,
		CurrentPeriodEnd: r.CurrentPeriodEnd, NextRenewalAt: r.NextRenewalAt, TrialEnd: r.TrialEnd,
		CancelAtPeriodEnd: r.CancelAtPeriodEnd, CanceledAt: r.CanceledAt, Version: int(r.Version), CreatedAt: r.CreatedAt,
		Dunning: DunningView{GraceEndsAt: r.GraceEndsAt, DunningEndsAt: r.DunningEndsAt, Paused: r.DunningPaused, PausedUntil: r.DunningPausedUntil}}
	if r.PendingPlanID != nil {
		q := int(r.Quantity)
		if r.PendingQuantity != nil {
			q = int(*r.PendingQuantity)
		}
		v.PendingChange = &PendingChange{PlanID: *r.PendingPlanID, Quantity: q, EffectiveAt: r.CurrentPeriodEnd}
	}
	disc, err := s.activeDiscountView(ctx, db, r.ID)
	if err != nil {
		return v, err
	}
	v.Discount = disc
	d, err := s.q(db).SubscriptionDunningSummary(ctx, &r.ID)
	if err != nil {
		return v, err
	}
	v.Dunning.Attempts = int(d.Attempts)
	if t, ok := d.NextAttemptAt.(time.Time); ok {
		t = t.UTC()
		v.Dunning.NextAttemptAt = &t
	}
	v.Dunning.LastDeclineCode = d.LastDeclineCode
	return v, nil
}

// TimelineEntry is one event on a subscription's timeline.
type TimelineEntry struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	InvoiceID  *string         `json:"invoice_id"`
	AttemptID  *string         `json:"attempt_id"`
	Data       json.RawMessage `json:"data"`
	OccurredAt time.Time       `json:"occurred_at"`
}

// Timeline lists a subscription's events in the order they happened.
func (s *Service) Timeline(ctx context.Context, subID string, limit int, afterSeq int64) ([]TimelineEntry, int64, error) {
	if _, err := s.GetSubscription(ctx, subID); err != nil {
		return nil, 0, err
	}
	rows, err := s.q(s.pool).SubscriptionTimeline(ctx, store.SubscriptionTimelineParams{SubscriptionID: &subID, AfterSeq: &afterSeq, Max: int32(limit + 1)})
	if err != nil {
		return nil, 0, err
	}
	out := make([]TimelineEntry, 0, len(rows))
	var next int64
	for i, r := range rows {
		if i == limit {
			next = *rows[i-1].Seq
			break
		}
		out = append(out, TimelineEntry{ID: r.ID, Type: r.Type, InvoiceID: r.InvoiceID, AttemptID: r.AttemptID, Data: r.Data, OccurredAt: r.OccurredAt})
	}
	return out, next, nil
}
