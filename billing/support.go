package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/audit"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
	"github.com/dunningworks/billing/statemachine"
)

// Actor is the person (or tool) behind a support action, as the audit log records them.
type Actor struct {
	ID        string // an API key id, "console:<key id>" or "billingctl:<os user>"
	Role      string
	RequestID string
	Origin    string // audit.OriginAPI, audit.OriginConsole or audit.OriginCLI
}

// Support actions, spelled as their endpoints are: these names fill the audit log's action column and the
// "allowed" list of a 409.
const (
	ActionRetry         = "retry"
	ActionMarkPaid      = "mark-paid"
	ActionVoid          = "void"
	ActionWriteOff      = "write-off"
	ActionExtendGrace   = "extend-grace"
	ActionPauseDunning  = "pause-dunning"
	ActionResumeDunning = "resume-dunning"
	ActionCancel        = "cancel"
)

// maxSupportHorizon bounds how far ahead support may move a deadline: far enough for any real case,
// near enough that a typo in the year is refused rather than obeyed.
const maxSupportHorizon = 365 * 24 * time.Hour

// InvoiceSupportActions lists what support may do to an invoice in its current state.
func InvoiceSupportActions(status string, amountPaid decimal.Decimal) []string {
	switch statemachine.InvoiceStatus(status) {
	case statemachine.InvoiceDraft:
		return []string{ActionVoid}
	case statemachine.InvoiceOpen:
		if amountPaid.IsZero() {
			return []string{ActionMarkPaid, ActionRetry, ActionVoid, ActionWriteOff}
		}
		return []string{ActionMarkPaid, ActionRetry, ActionWriteOff}
	case statemachine.InvoiceUncollectible:
		return []string{ActionMarkPaid}
	}
	return []string{}
}

// SubscriptionSupportActions lists what support may do to a subscription in its current state.
func SubscriptionSupportActions(status string, dunningPaused bool) []string {
	pause := ActionPauseDunning
	if dunningPaused {
		pause = ActionResumeDunning
	}
	switch statemachine.SubscriptionStatus(status) {
	case statemachine.SubscriptionPastDue:
		return []string{ActionCancel, ActionExtendGrace, pause}
	case statemachine.SubscriptionSuspended:
		return []string{ActionCancel, pause}
	case statemachine.SubscriptionCanceled, statemachine.SubscriptionIncompleteExpired:
		return []string{}
	}
	return []string{ActionCancel}
}

// notAllowed is the 409 of a support action refused in the target's state: the detail names the state
// and "allowed" lists the support actions that state does allow.
func notAllowed(action, kind, id, state string, allowed []string) error {
	return &apperr.Error{Kind: apperr.KindConflict, Code: "illegal_state_transition",
		Message: fmt.Sprintf("cannot %s %s %s: it is %s", action, kind, id, state),
		Extra:   map[string]any{"allowed": allowed, "state": state}}
}

func paymentInFlight(invoiceID, attemptID string) error {
	return &apperr.Error{Kind: apperr.KindConflict, Code: "payment_in_flight",
		Message: fmt.Sprintf("invoice %s has payment attempt %s whose outcome is not yet known; retry resolves it first", invoiceID, attemptID),
		Extra:   map[string]any{"allowed": []string{ActionRetry}, "attempt_id": attemptID}}
}

func (s *Service) writeAudit(ctx context.Context, tx pgx.Tx, a Actor, action, targetType, targetID, reason string, before, after any, now time.Time) error {
	_, err := audit.Write(ctx, tx, audit.Entry{Actor: a.ID, Role: a.Role, Action: action, TargetType: targetType, TargetID: targetID,
		Reason: reason, Before: before, After: after, RequestID: a.RequestID, Origin: a.Origin, At: now})
	return err
}

func checkActor(a Actor, reason string) error {
	if a.ID == "" || a.Role == "" {
		return errors.New("support action without an actor")
	}
	return audit.ValidateReason(reason)
}

// inFlight returns the id of the invoice's unresolved attempt, or "".
func (s *Service) inFlight(ctx context.Context, tx pgx.Tx, invoiceID string) (string, error) {
	att, err := s.q(tx).InFlightAttempt(ctx, invoiceID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return att.ID, err
}

// invoiceSnapshot is an invoice as the audit log keeps it: the fields support actions change.
func invoiceSnapshot(r store.Invoice) map[string]any {
	return map[string]any{"status": r.Status, "amount_due": money.String(r.AmountDue, r.Currency),
		"amount_paid": money.String(r.AmountPaid, r.Currency), "currency": r.Currency, "attempt_count": r.AttemptCount,
		"next_attempt_at": r.NextAttemptAt, "version": r.Version}
}

// subscriptionSnapshot is a subscription as the audit log keeps it.
func subscriptionSnapshot(r store.Subscription) map[string]any {
	return map[string]any{"status": r.Status, "grace_ends_at": r.GraceEndsAt, "dunning_ends_at": r.DunningEndsAt,
		"dunning_paused": r.DunningPaused, "dunning_paused_until": r.DunningPausedUntil, "version": r.Version}
}

// ChargeOutcome is what a support retry did at the gateway.
type ChargeOutcome struct {
	AttemptID    string `json:"attempt_id,omitempty"`
	Outcome      string `json:"outcome"` // succeeded, declined, unknown, deferred, no_key, in_flight
	DeclineCode  string `json:"decline_code,omitempty"`
	DeclineClass string `json:"decline_class,omitempty"`
}

func chargeOutcome(r ChargeResult) ChargeOutcome {
	o := ChargeOutcome{AttemptID: r.AttemptID, Outcome: string(r.Outcome), DeclineCode: r.DeclineCode, DeclineClass: string(r.DeclineClass)}
	switch {
	case r.NoKey:
		o.Outcome = "no_key"
	case r.Deferred:
		o.Outcome = "deferred"
	case r.InFlight && r.Outcome == "":
		o.Outcome = "in_flight"
	case o.Outcome == "":
		o.Outcome = "none"
	}
	return o
}

// RetryResult is the answer to a support retry: the invoice afterwards and what the charge did (nil when
// nothing was charged because the invoice is already paid).
type RetryResult struct {
	Invoice Invoice        `json:"invoice"`
	Charge  *ChargeOutcome `json:"charge"`
	// InFlight is set when an earlier attempt was still unresolved: it was looked up instead of charging
	// again, and Charge is that attempt's outcome.
	InFlight bool `json:"in_flight"`
}

// RetryInvoice charges an open invoice now, outside its dunning schedule. While the subscription's dunning
// is paused it refuses (409 dunning_paused): the pause holds every charge, and resuming it charges what waits. The audit row commits first, in its own transaction, because the charge runs
// outside any transaction by design; the outcome is in the answer and on the invoice's attempts. If an
// attempt is still in flight, that one is looked up at the gateway instead: never two at once. A paid
// invoice is a no-op.
func (s *Service) RetryInvoice(ctx context.Context, a Actor, invoiceID string, expectVersion int, reason string) (RetryResult, error) {
	if err := checkActor(a, reason); err != nil {
		return RetryResult{}, err
	}
	var inflight string
	var done bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		sub, inv, err := s.lockInvoiceChain(ctx, tx, invoiceID)
		if err != nil {
			return err
		}
		if err := checkVersion("invoice", inv.ID, inv.Version, expectVersion); err != nil {
			return err
		}
		switch inv.Status {
		case string(statemachine.InvoicePaid):
			done = true
			return nil
		case string(statemachine.InvoiceOpen):
		default:
			return notAllowed(ActionRetry, "invoice", inv.ID, inv.Status, InvoiceSupportActions(inv.Status, inv.AmountPaid))
		}
		if sub != nil && dunningPaused(*sub, now) {
			return dunningPausedError(*sub, inv)
		}
		if inflight, err = s.inFlight(ctx, tx, inv.ID); err != nil {
			return err
		}
		after := map[string]any{"charge": "requested"}
		if inflight != "" {
			after = map[string]any{"lookup": inflight}
		}
		return s.writeAudit(ctx, tx, a, ActionRetry, "invoice", inv.ID, reason, invoiceSnapshot(inv), after, now)
	})
	if err != nil {
		return RetryResult{}, err
	}
	var out RetryResult
	if !done {
		var res ChargeResult
		if inflight != "" {
			out.InFlight = true
			res, err = s.ResolveAttempt(ctx, inflight, ResolveOptions{Now: true})
		} else {
			res, err = s.Collect(ctx, invoiceID, CollectOptions{Force: true})
		}
		if err != nil {
			return RetryResult{}, err
		}
		c := chargeOutcome(res)
		out.Charge = &c
	}
	out.Invoice, err = s.GetInvoice(ctx, invoiceID)
	return out, err
}

// MarkPaid is an offline payment support records (a bank transfer, cash at the counter).
type MarkPaid struct {
	Reason    string
	Reference string // the payment's reference outside the gateway (transfer id, receipt number)
	Amount    string // must equal the invoice's amount due, in its currency
	// ExpectVersion, when not 0, is the invoice version the caller last saw (If-Match): a mismatch is 412.
	ExpectVersion int
}

// MarkInvoicePaid settles an open (or written-off) invoice with money received outside the gateway: the
// ledger moves the amount from the customer's receivable to cash:offline, the invoice is paid and a
// delinquent subscription recovers, exactly as a gateway payment would. Only the full amount due is
// accepted: a partial offline payment would leave the card retried for a remainder nobody agreed on.
// Repeating the call with the same reference is a no-op; an attempt in flight refuses it (the card may
// have paid already).
func (s *Service) MarkInvoicePaid(ctx context.Context, a Actor, invoiceID string, in MarkPaid) (Invoice, error) {
	if err := checkActor(a, in.Reason); err != nil {
		return Invoice{}, err
	}
	var v apperr.Validation
	if in.Reference == "" || len(in.Reference) > 255 {
		v.Add("reference", "is required (at most 255 characters): the transfer or receipt it was paid with")
	}
	if in.Amount == "" {
		v.Add("amount", "is required: the invoice's amount due")
	}
	if err := v.Err(); err != nil {
		return Invoice{}, err
	}
	ledgerRef := invoiceID + "/" + in.Reference
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		sub, inv, err := s.lockInvoiceChain(ctx, tx, invoiceID)
		if err != nil {
			return err
		}
		if err := checkVersion("invoice", inv.ID, inv.Version, in.ExpectVersion); err != nil {
			return err
		}
		amount, err := money.Parse(in.Amount, inv.Currency)
		if err != nil {
			return apperr.Invalid("amount", "%v", err)
		}
		if inv.Status == string(statemachine.InvoicePaid) {
			if again, err := s.q(tx).OfflinePaymentRecorded(ctx, ledgerRef); err != nil || again {
				return err // the same offline payment, recorded before: nothing to do
			}
		}
		if inv.Status != string(statemachine.InvoiceOpen) && inv.Status != string(statemachine.InvoiceUncollectible) {
			return notAllowed(ActionMarkPaid, "invoice", inv.ID, inv.Status, InvoiceSupportActions(inv.Status, inv.AmountPaid))
		}
		if !amount.Equal(inv.AmountDue) {
			return apperr.Invalid("amount", "must equal the amount due, %s %s (partial offline payments are not accepted)",
				money.String(inv.AmountDue, inv.Currency), inv.Currency)
		}
		if id, err := s.inFlight(ctx, tx, inv.ID); err != nil {
			return err
		} else if id != "" {
			return paymentInFlight(inv.ID, id)
		}
		if err := s.post(ctx, tx, "offline_payment", ledgerRef, inv.CustomerID, "offline payment "+in.Reference, now,
			Entry{Account: AccountOfflineCash, Currency: inv.Currency, Amount: amount},
			Entry{Account: ReceivableAccount(inv.CustomerID), Currency: inv.Currency, Amount: amount.Neg()}); err != nil {
			return err
		}
		if err := s.emit(ctx, tx, EvtPaymentSucceeded, Refs{CustomerID: inv.CustomerID, SubscriptionID: deref(inv.SubscriptionID), InvoiceID: inv.ID}, now,
			map[string]any{"amount": money.String(amount, inv.Currency), "currency": inv.Currency, "offline_reference": in.Reference}); err != nil {
			return err
		}
		if err := s.applyInvoicePayment(ctx, tx, sub, inv, amount, now); err != nil {
			return err
		}
		after, err := s.q(tx).GetInvoice(ctx, inv.ID)
		if err != nil {
			return err
		}
		snap := invoiceSnapshot(after)
		snap["offline_reference"] = in.Reference
		return s.writeAudit(ctx, tx, a, ActionMarkPaid, "invoice", inv.ID, in.Reason, invoiceSnapshot(inv), snap, now)
	})
	if err != nil {
		return Invoice{}, err
	}
	return s.GetInvoice(ctx, invoiceID)
}

// VoidInvoice cancels an invoice nothing was collected on (the invoice machine's guard) and reverses its
// receivable. A subscription that was delinquent only because of it recovers: support has waived what was
// owed. An invoice already void is a no-op.
func (s *Service) VoidInvoice(ctx context.Context, a Actor, invoiceID string, expectVersion int, reason string) (Invoice, error) {
	return s.invoiceAction(ctx, a, ActionVoid, invoiceID, expectVersion, reason, statemachine.InvoiceVoided,
		func(tx pgx.Tx, sub *store.Subscription, inv store.Invoice, now time.Time) error {
			if err := s.voidInvoice(ctx, tx, inv, now); err != nil {
				return err
			}
			if sub == nil {
				return nil
			}
			switch statemachine.SubscriptionStatus(sub.Status) {
			case statemachine.SubscriptionPastDue, statemachine.SubscriptionSuspended:
				voided, err := s.q(tx).GetInvoice(ctx, inv.ID)
				if err != nil {
					return err
				}
				// Recovers only if no other invoice of the subscription is still in dunning.
				return s.onInvoicePaid(ctx, tx, *sub, voided, now)
			}
			return nil
		})
}

// WriteOffInvoice gives up collecting an open invoice: uncollectible, its amount due moved from the
// receivable to bad debt, no more retries. It gives up on the money, not on the subscription, which walks
// on to its policy's final action (voiding is how support forgives). An invoice already uncollectible
// is a no-op.
func (s *Service) WriteOffInvoice(ctx context.Context, a Actor, invoiceID string, expectVersion int, reason string) (Invoice, error) {
	return s.invoiceAction(ctx, a, ActionWriteOff, invoiceID, expectVersion, reason, statemachine.InvoiceUncollectible,
		func(tx pgx.Tx, _ *store.Subscription, inv store.Invoice, now time.Time) error {
			return s.writeOff(ctx, tx, inv, now)
		})
}

// invoiceAction is the frame of a one-transaction invoice action: lock, check the caller's expected
// version, no-op when the invoice is already where the action leads, refuse other states and attempts in
// flight, act, audit.
func (s *Service) invoiceAction(ctx context.Context, a Actor, action, invoiceID string, expectVersion int, reason string, target statemachine.InvoiceStatus,
	act func(tx pgx.Tx, sub *store.Subscription, inv store.Invoice, now time.Time) error) (Invoice, error) {
	if err := checkActor(a, reason); err != nil {
		return Invoice{}, err
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		sub, inv, err := s.lockInvoiceChain(ctx, tx, invoiceID)
		if err != nil {
			return err
		}
		if err := checkVersion("invoice", inv.ID, inv.Version, expectVersion); err != nil {
			return err
		}
		if inv.Status == string(target) {
			return nil
		}
		allowed := InvoiceSupportActions(inv.Status, inv.AmountPaid)
		if !contains(allowed, action) {
			return notAllowed(action, "invoice", inv.ID, inv.Status, allowed)
		}
		if id, err := s.inFlight(ctx, tx, inv.ID); err != nil {
			return err
		} else if id != "" {
			return paymentInFlight(inv.ID, id)
		}
		if err := act(tx, sub, inv, now); err != nil {
			return err
		}
		after, err := s.q(tx).GetInvoice(ctx, inv.ID)
		if err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, a, action, "invoice", inv.ID, reason, invoiceSnapshot(inv), invoiceSnapshot(after), now)
	})
	if err != nil {
		return Invoice{}, err
	}
	return s.GetInvoice(ctx, invoiceID)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// WorkCanceler is implemented by a Scheduler that can withdraw queued work (package jobs's does, with
// River's JobCancelTx). It is optional: without it moot work still runs and finds nothing to do.
type WorkCanceler interface {
	// CancelTx withdraws, in tx, the queued (not running) work of the given kinds for entity id.
	CancelTx(ctx context.Context, tx pgx.Tx, id string, kinds ...WorkKind) error
}

// cancelWork withdraws queued work that a state change in tx made moot, if the scheduler can.
func (s *Service) cancelWork(ctx context.Context, tx pgx.Tx, id string, kinds ...WorkKind) error {
	if c, ok := s.sched.(WorkCanceler); ok {
		return c.CancelTx(ctx, tx, id, kinds...)
	}
	return nil
}

// subscriptionAction is the frame of a subscription action: lock, check the caller's expected version,
// act (which returns the new row, or changed=false for a no-op), audit the change.
func (s *Service) subscriptionAction(ctx context.Context, a Actor, action, subID string, expectVersion int, reason string,
	act func(tx pgx.Tx, sub store.Subscription, now time.Time) (after store.Subscription, changed bool, err error)) (Subscription, error) {
	if err := checkActor(a, reason); err != nil {
		return Subscription{}, err
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		sub, err := s.lockSubscriptionFor(ctx, tx, subID, expectVersion)
		if err != nil {
			return err
		}
		after, changed, err := act(tx, sub, now)
		if err != nil || !changed {
			return err
		}
		return s.writeAudit(ctx, tx, a, action, "subscription", sub.ID, reason, subscriptionSnapshot(sub), subscriptionSnapshot(after), now)
	})
	if err != nil {
		return Subscription{}, err
	}
	return s.GetSubscription(ctx, subID)
}

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

func checkHorizon(field string, t, now time.Time) error {
	switch {
	case !t.After(now):
		return apperr.Invalid(field, "must be in the future (now is %s)", now.Format(time.RFC3339))
	case t.Sub(now) > maxSupportHorizon:
		return apperr.Invalid(field, "must be within %d days from now", int(maxSupportHorizon/(24*time.Hour)))
	}
	return nil
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

// dunningPaused reports whether sub's dunning clock is stopped at now.
func dunningPaused(sub store.Subscription, now time.Time) bool {
	return sub.DunningPaused && (sub.DunningPausedUntil == nil || sub.DunningPausedUntil.After(now))
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
		row, err := s.saveSubscription(ctx, tx, sp)
		if err != nil {
			return row, false, err
		}
		if !wasPaused {
			// The clock stopped now; a changed `until` keeps the original start.
			if err := s.q(tx).SetDunningPausedAt(ctx, store.SetDunningPausedAtParams{ID: sub.ID, PausedAt: &now}); err != nil {
				return row, false, err
			}
		}
		if until != nil {
			// The dunning-end step also ends pauses whose time is up (both are the dunning clock's).
			if err := s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkDunningEnd, ID: sub.ID, At: *until}); err != nil {
				return row, false, err
			}
		}
		return row, true, nil
	})
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

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

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
