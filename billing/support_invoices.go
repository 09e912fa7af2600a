package billing

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
	"github.com/dunningworks/billing/statemachine"
)

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
	if in.Reference == "" || utf8.RuneCountInString(in.Reference) > 255 {
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
