package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/audit"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
	"github.com/dunningworks/billing/statemachine"
)

// The support desk: who acts (Actor), what each state allows, the audit row every action writes, and the
// frames an invoice or subscription action runs in. The actions themselves are in support_invoices.go and
// support_subscriptions.go; the delinquent list in support_delinquent.go.

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

func checkHorizon(field string, t, now time.Time) error {
	switch {
	case !t.After(now):
		return apperr.Invalid(field, "must be in the future (now is %s)", now.Format(time.RFC3339))
	case t.Sub(now) > maxSupportHorizon:
		return apperr.Invalid(field, "must be within %d days from now", int(maxSupportHorizon/(24*time.Hour)))
	}
	return nil
}
