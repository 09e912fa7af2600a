package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/idem"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
	"github.com/dunningworks/billing/statemachine"
)

// Money back (docs/refunds.md). Every refund or credit is a credit note, numbered like invoices. What a
// credit note does is its method:
//
//   - refund: money back to the card through the gateway. The refund row is recorded and committed
//     first (with the idempotency key every resend reuses), the gateway is called outside any transaction,
//     and the outcome is recorded in a new one; an unknown outcome is looked up, never guessed.
//   - customer_balance: credit on the customer's balance (ledger account credit:<customer>), spent by
//     their next invoices before any card is charged.
//   - invoice: less due on an open invoice; a credit note for all of it settles the invoice.
const (
	CreditNoteRefund  = "refund"
	CreditNoteBalance = "customer_balance"
	CreditNoteInvoice = "invoice"
)

// Where a credit note came from.
const (
	OriginAPI     = "api"
	OriginSupport = "support"
	OriginGateway = "gateway" // made at the gateway (a dashboard cancel), found by webhook, lookup or reconciliation
)

// Refund statuses.
const (
	RefundPending   = "pending"
	RefundSucceeded = "succeeded"
	RefundUnknown   = "unknown"
	RefundFailed    = "failed"
)

// Events of money back.
const (
	EvtCreditNoteIssued = "credit_note.issued"
	EvtCreditNoteVoided = "credit_note.voided"
	EvtRefundSucceeded  = "refund.succeeded"
	EvtRefundFailed     = "refund.failed"
)

// ActionRefund is the audit log's action for a refund or credit note made by a person or the merchant.
const ActionRefund = "refund"

// resendWindow bounds how long after its first send a refund whose gateway does not list refunds
// (Stripe's lookup shows only the refunded total) is resent on a lookup: within the gateway's
// idempotency window a resend with the same key is answered with the first outcome, after it a resend
// could refund twice, so it is left to support.
const resendWindow = 23 * time.Hour

// RefundRequest is POST /v1/invoices/{id}/refunds.
type RefundRequest struct {
	Amount string `json:"amount"` // empty: everything refundable (paid invoice) or due (open invoice)
	Reason string `json:"reason"`
	// To is card or credit for a paid invoice (default: card when the invoice was paid by card, else
	// credit); empty for an open invoice, whose credit note lowers what is due.
	To string `json:"to"`
	// ExpectVersion is If-Match: the invoice's version the caller saw (0: any).
	ExpectVersion int `json:"-"`
	// Idempotency is the request's Idempotency-Key. When set it is recorded with the credit note, in the
	// transaction that makes it, so a retry after a crash answers with that credit note (refundedBefore).
	Idempotency idem.Request `json:"-"`
}

// CreditNote is API.md's credit note.
type CreditNote struct {
	ID         string           `json:"id"`
	Number     string           `json:"number"`
	CustomerID string           `json:"customer_id"`
	InvoiceID  string           `json:"invoice_id"`
	Currency   string           `json:"currency"`
	Amount     string           `json:"amount"`
	Reason     string           `json:"reason"`
	Method     string           `json:"method"`
	Status     string           `json:"status"`
	Origin     string           `json:"origin"`
	Lines      []CreditNoteLine `json:"lines"`
	Refund     *Refund          `json:"refund"`
	CreatedAt  time.Time        `json:"created_at"`
	IssuedAt   *time.Time       `json:"issued_at"`
	VoidedAt   *time.Time       `json:"voided_at"`
}

// CreditNoteLine is one line of a credit note.
type CreditNoteLine struct {
	Description string `json:"description"`
	Amount      string `json:"amount"`
}

// Refund is the gateway side of a credit note that sends money back to the card.
type Refund struct {
	ID              string     `json:"id"`
	Status          string     `json:"status"`
	Amount          string     `json:"amount"`
	Currency        string     `json:"currency"`
	Gateway         string     `json:"gateway"`
	AttemptID       string     `json:"attempt_id"`
	GatewayRefundID *string    `json:"gateway_refund_id"`
	FailureCode     *string    `json:"failure_code"`
	FailureReason   *string    `json:"failure_reason"`
	CreatedAt       time.Time  `json:"created_at"`
	ResolvedAt      *time.Time `json:"resolved_at"`
}

func refundExceeds(what string, refundable decimal.Decimal, currency string) error {
	return &apperr.Error{Kind: apperr.KindValidation, Code: "refund_exceeds_refundable",
		Message: fmt.Sprintf("amount: more than %s (%s %s)", what, money.String(refundable, currency), currency),
		Fields:  []apperr.FieldError{{Field: "amount", Message: fmt.Sprintf("at most %s %s", money.String(refundable, currency), currency)}},
		Extra:   map[string]any{"refundable": money.String(refundable, currency), "currency": currency}}
}

// CreateRefund gives money back on an invoice: a credit note that refunds the card, credits the
// customer's balance (paid invoice) or lowers what is due (open invoice). Concurrent requests on one
// invoice are serialized by the invoice's row lock, and what is refundable is computed under it, so
// together they never give back more than was paid. A refund to the card is sent to the gateway after
// the commit; the answer's credit note says how that went (pending while the outcome is unknown).
func (s *Service) CreateRefund(ctx context.Context, a Actor, invoiceID string, req RefundRequest) (CreditNote, error) {
	if err := checkActor(a, req.Reason); err != nil {
		return CreditNote{}, err
	}
	origin := OriginAPI
	if a.Role == "support" || a.Role == "admin" {
		origin = OriginSupport
	}
	if again, ok, err := s.refundedBefore(ctx, req.Idempotency); err != nil || ok {
		return again, err
	}
	var cnID string
	var refund store.Refund
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		sub, inv, err := s.lockInvoiceChain(ctx, tx, invoiceID)
		if err != nil {
			return err
		}
		if err := checkVersion("invoice", inv.ID, inv.Version, req.ExpectVersion); err != nil {
			return err
		}
		var amount decimal.Decimal
		if req.Amount != "" {
			if amount, err = money.Parse(req.Amount, inv.Currency); err != nil || !amount.IsPositive() {
				return apperr.Invalid("amount", "a positive amount in %s with at most its minor unit of decimals", inv.Currency)
			}
		}
		var method string
		var att *store.PaymentAttempt
		switch inv.Status {
		case string(statemachine.InvoicePaid):
			held, err := s.q(tx).InvoiceRefundsHeld(ctx, inv.ID)
			if err != nil {
				return err
			}
			refundable := inv.AmountPaid.Sub(held)
			if amount.IsZero() {
				amount = refundable
			}
			if !refundable.IsPositive() || amount.GreaterThan(refundable) {
				return refundExceeds("what is refundable on this invoice", decimal.Max(refundable, decimal.Zero), inv.Currency)
			}
			switch req.To {
			case "card", "":
				a, cardRefundable, err := s.refundableAttempt(ctx, tx, inv.ID, amount)
				if err != nil {
					return err
				}
				switch {
				case a != nil:
					att, method = a, CreditNoteRefund
				case req.To == "card":
					return refundExceeds("what can go back to a card on this invoice", cardRefundable, inv.Currency)
				default:
					method = CreditNoteBalance
				}
			case "credit":
				method = CreditNoteBalance
			default:
				return apperr.Invalid("to", "must be card or credit")
			}
		case string(statemachine.InvoiceOpen):
			if req.To != "" {
				return apperr.Invalid("to", "an open invoice's credit note lowers what is due; to is for paid invoices")
			}
			if id, err := s.inFlight(ctx, tx, inv.ID); err != nil {
				return err
			} else if id != "" {
				return paymentInFlight(inv.ID, id)
			}
			if amount.IsZero() {
				amount = inv.AmountDue
			}
			if !inv.AmountDue.IsPositive() || amount.GreaterThan(inv.AmountDue) {
				return refundExceeds("what is due on this invoice", inv.AmountDue, inv.Currency)
			}
			method = CreditNoteInvoice
		default:
			return notAllowed(ActionRefund, "invoice", inv.ID, inv.Status, []string{})
		}

		cn, err := s.newCreditNote(ctx, tx, inv, method, origin, a.ID, amount, req.Reason, now)
		if err != nil {
			return err
		}
		cnID = cn.ID
		if req.Idempotency.Set() {
			n, err := s.q(tx).RecordCreditNoteRequest(ctx, store.RecordCreditNoteRequestParams{IdemKey: req.Idempotency.Identity,
				RequestHash: req.Idempotency.Hash, CreditNoteID: cn.ID, RetentionHours: idem.RetentionHours})
			if err != nil {
				return fmt.Errorf("record credit note request: %w", err)
			}
			if n == 0 {
				return errRecordedMeanwhile
			}
		}
		switch method {
		case CreditNoteRefund:
			id := ids.New("re")
			next := now.Add(lookupDelay(0))
			refund, err = s.q(tx).CreateRefund(ctx, store.CreateRefundParams{ID: id, CreditNoteID: cn.ID, InvoiceID: inv.ID,
				AttemptID: att.ID, CustomerID: inv.CustomerID, Gateway: att.Gateway, PaymentKey: deref(att.GatewayPaymentKey),
				Amount: amount, Currency: inv.Currency, Reason: req.Reason, Status: RefundPending, Origin: origin,
				IdempotencyKey: "refund-" + id, NextLookupAt: &next, CreatedAt: now})
			if err != nil {
				return fmt.Errorf("record refund: %w", err)
			}
			// If this process dies before the outcome is recorded, the refund is looked up by this time.
			if err := s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkResolveRefund, ID: refund.ID, At: next}); err != nil {
				return err
			}
		case CreditNoteBalance:
			if err := s.creditBalance(ctx, tx, inv, cn, now); err != nil {
				return err
			}
		case CreditNoteInvoice:
			if err := s.creditOpenInvoice(ctx, tx, sub, inv, cn, now); err != nil {
				return err
			}
		}
		after, err := s.q(tx).GetInvoice(ctx, inv.ID)
		if err != nil {
			return err
		}
		snap := invoiceSnapshot(after)
		snap["credit_note_id"], snap["credit_note_number"], snap["method"] = cn.ID, cn.Number, method
		snap["amount"] = money.String(amount, inv.Currency)
		if refund.ID != "" {
			snap["refund_id"] = refund.ID
		}
		return s.writeAudit(ctx, tx, a, ActionRefund, "invoice", inv.ID, req.Reason, invoiceSnapshot(inv), snap, now)
	})
	if errors.Is(err, errRecordedMeanwhile) || dbx.IsUniqueViolation(err, "credit_note_requests_pkey") {
		// A concurrent run of the same request (its idempotency lock was taken over while it still lived)
		// made the credit note first: answer with that one and make nothing.
		again, ok, err := s.refundedBefore(ctx, req.Idempotency)
		if err == nil && !ok {
			err = fmt.Errorf("create refund: %w, and its record is gone", errRecordedMeanwhile)
		}
		return again, err
	}
	if err != nil {
		return CreditNote{}, err
	}
	if refund.ID != "" {
		if err := s.sendRefund(ctx, refund); err != nil {
			// The refund is recorded; its lookup settles it. The answer shows it pending.
			s.log.Warn("refund not settled on the first send", "refund_id", refund.ID, "invoice_id", invoiceID, "error", err)
		}
	}
	return s.GetCreditNote(ctx, cnID)
}

// refundedBefore answers a retry of a request that already made a credit note (ok=false when none did, or
// when its key was recorded longer ago than the retention): that credit note as it is now. The same key
// with another body is 422. A refund the first run left unsettled — it died after recording it, while the
// gateway had it, or before recording the gateway's answer — is settled now, as its lookup job would:
// looked up at the gateway and, if the gateway does not have it, sent again with the same key. So the
// retry gives back money once and says how it went.
func (s *Service) refundedBefore(ctx context.Context, req idem.Request) (CreditNote, bool, error) {
	if !req.Set() {
		return CreditNote{}, false, nil
	}
	row, err := s.q(s.pool).CreditNoteByRequest(ctx, store.CreditNoteByRequestParams{IdemKey: req.Identity,
		RetentionHours: idem.RetentionHours})
	if errors.Is(err, pgx.ErrNoRows) {
		return CreditNote{}, false, nil
	}
	if err != nil {
		return CreditNote{}, false, err
	}
	if err := req.Check(row.RequestHash); err != nil {
		return CreditNote{}, true, err
	}
	ref, err := s.q(s.pool).RefundForCreditNote(ctx, row.CreditNoteID)
	switch {
	case errors.Is(err, pgx.ErrNoRows): // a credit to the balance or an open invoice: in effect at once
	case err != nil:
		return CreditNote{}, true, err
	case ref.Status == RefundPending || ref.Status == RefundUnknown:
		if err := s.resolveRefund(ctx, ref.ID, true); err != nil {
			// Its lookup job settles it; the answer shows it pending.
			s.log.Warn("retried refund not settled yet", "refund_id", ref.ID, "error", err)
		}
	}
	cn, err := s.GetCreditNote(ctx, row.CreditNoteID)
	return cn, true, err
}

// refundableAttempt finds the newest payment of the invoice at a gateway with at least amount still
// refundable, locked. When none has, it returns nil and the most any one of them could take.
func (s *Service) refundableAttempt(ctx context.Context, tx pgx.Tx, invoiceID string, amount decimal.Decimal) (*store.PaymentAttempt, decimal.Decimal, error) {
	atts, err := s.q(tx).RefundableAttempts(ctx, invoiceID)
	if err != nil {
		return nil, decimal.Zero, err
	}
	most := decimal.Zero
	for _, a := range atts {
		locked, err := s.q(tx).LockAttempt(ctx, a.ID)
		if err != nil {
			return nil, most, err
		}
		held, err := s.q(tx).AttemptRefundsHeld(ctx, a.ID)
		if err != nil {
			return nil, most, err
		}
		left := locked.Amount.Sub(held)
		if left.GreaterThanOrEqual(amount) {
			return &locked, left, nil
		}
		most = decimal.Max(most, left)
	}
	return nil, most, nil
}

// newCreditNote numbers and stores a credit note with its one line. A refund's note is pending until the
// gateway answers; the others are in effect at once.
func (s *Service) newCreditNote(ctx context.Context, tx pgx.Tx, inv store.Invoice, method, origin, by string, amount decimal.Decimal, reason string, now time.Time) (store.CreditNote, error) {
	number, err := s.NextNumber(ctx, tx, SeriesCreditNote)
	if err != nil {
		return store.CreditNote{}, err
	}
	status, issuedAt := "issued", &now
	if method == CreditNoteRefund {
		status, issuedAt = "pending", nil
	}
	cn, err := s.q(tx).CreateCreditNote(ctx, store.CreateCreditNoteParams{ID: ids.New("cn"), Number: number, CustomerID: inv.CustomerID,
		InvoiceID: inv.ID, Currency: inv.Currency, Amount: amount, Reason: reason, Method: method, Status: status, Origin: origin,
		CreatedBy: by, CreatedAt: now, IssuedAt: issuedAt})
	if err != nil {
		return cn, fmt.Errorf("credit note: %w", err)
	}
	of := deref(inv.Number)
	if of == "" {
		of = inv.ID
	}
	desc := map[string]string{
		CreditNoteRefund:  "Refund to the card of invoice " + of,
		CreditNoteBalance: "Credit to the customer's balance for invoice " + of,
		CreditNoteInvoice: "Credit on invoice " + of,
	}[method]
	if reason != "" {
		desc += ": " + reason
	}
	if err := s.q(tx).AddCreditNoteLine(ctx, store.AddCreditNoteLineParams{CreditNoteID: cn.ID, Description: desc, Amount: amount}); err != nil {
		return cn, err
	}
	return cn, nil
}

func creditNoteData(cn store.CreditNote) map[string]any {
	return map[string]any{"credit_note_id": cn.ID, "number": cn.Number, "method": cn.Method, "origin": cn.Origin,
		"amount": money.String(cn.Amount, cn.Currency), "currency": cn.Currency, "reason": cn.Reason}
}

// creditBalance: the money stays with us as credit the customer holds, spent by their next invoices.
func (s *Service) creditBalance(ctx context.Context, tx pgx.Tx, inv store.Invoice, cn store.CreditNote, now time.Time) error {
	if err := s.post(ctx, tx, "credit_note", cn.ID, inv.CustomerID, "credit note "+cn.Number, now,
		Entry{Account: AccountRefunds, Currency: cn.Currency, Amount: cn.Amount},
		Entry{Account: CreditAccount(inv.CustomerID), Currency: cn.Currency, Amount: cn.Amount.Neg()}); err != nil {
		return err
	}
	if _, err := s.q(tx).AddInvoiceRefunded(ctx, store.AddInvoiceRefundedParams{ID: inv.ID, Amount: cn.Amount}); err != nil {
		return err
	}
	refs := Refs{CustomerID: inv.CustomerID, SubscriptionID: deref(inv.SubscriptionID), InvoiceID: inv.ID}
	return s.emit(ctx, tx, EvtCreditNoteIssued, refs, now, creditNoteData(cn))
}

// creditOpenInvoice: less is due; a credit note for all of it settles the invoice (paid, the subscription
// heals as with any payment).
func (s *Service) creditOpenInvoice(ctx context.Context, tx pgx.Tx, sub *store.Subscription, inv store.Invoice, cn store.CreditNote, now time.Time) error {
	if err := s.post(ctx, tx, "credit_note", cn.ID, inv.CustomerID, "credit note "+cn.Number, now,
		Entry{Account: AccountCreditNotes, Currency: cn.Currency, Amount: cn.Amount},
		Entry{Account: ReceivableAccount(inv.CustomerID), Currency: cn.Currency, Amount: cn.Amount.Neg()}); err != nil {
		return err
	}
	row, err := s.q(tx).CreditOpenInvoice(ctx, store.CreditOpenInvoiceParams{ID: inv.ID, Amount: cn.Amount})
	if err != nil {
		return fmt.Errorf("credit invoice %s: %w", inv.ID, err)
	}
	refs := Refs{CustomerID: inv.CustomerID, SubscriptionID: deref(inv.SubscriptionID), InvoiceID: inv.ID}
	if err := s.emit(ctx, tx, EvtCreditNoteIssued, refs, now, creditNoteData(cn)); err != nil {
		return err
	}
	if row.AmountDue.IsPositive() {
		return nil
	}
	next, err := statemachine.FireInvoice(ctx, statemachine.InvoiceStatus(row.Status), statemachine.InvoicePay, statemachine.InvoiceFacts{AmountPaidIsZero: row.AmountPaid.IsZero()})
	if err != nil {
		return err
	}
	p := invoiceParams(row)
	p.Status, p.PaidAt, p.NextAttemptAt = string(next), &now, nil
	if row, err = s.q(tx).UpdateInvoice(ctx, p); err != nil {
		return fmt.Errorf("settle invoice %s: %w", inv.ID, err)
	}
	if err := s.emit(ctx, tx, EvtInvoicePaid, refs, now, map[string]any{"amount_paid": money.String(row.AmountPaid, row.Currency),
		"amount_credited": money.String(row.AmountCredited, row.Currency), "currency": row.Currency}); err != nil {
		return err
	}
	if sub != nil {
		return s.onInvoicePaid(ctx, tx, *sub, row, now)
	}
	return nil
}

// sendRefund calls the gateway for a committed refund (no transaction is open) and records the answer.
func (s *Service) sendRefund(ctx context.Context, r store.Refund) error {
	gw, ok := s.gateways.Get(r.Gateway)
	if !ok {
		return s.recordRefund(ctx, r.ID, refundAnswer{notSent: "gateway " + r.Gateway + " is not enabled"})
	}
	now := s.clock.Now()
	if err := s.q(s.pool).MarkRefundSent(ctx, store.MarkRefundSentParams{ID: r.ID, SentAt: &now}); err != nil {
		return err
	}
	if s.hooks.BeforeRefund != nil {
		if err := s.hooks.BeforeRefund(r.ID); err != nil {
			return err
		}
	}
	err := gw.Cancel(ctx, r.PaymentKey, r.Reason, r.Amount, r.IdempotencyKey)
	var ans refundAnswer
	var refused *gateway.RefundRefusedError
	switch {
	case err == nil:
		ans.succeeded = true
	case errors.Is(err, gateway.ErrTryLater):
		ans.notSent = err.Error()
	case errors.As(err, &refused):
		// A refusal may answer a resend of a refund that went through the first time (an expired
		// idempotency key): only a lookup that does not show ours makes it a failure.
		return s.settleRefusal(ctx, r, refused)
	default:
		ans.unknown = err.Error()
	}
	if s.hooks.AfterRefund != nil {
		if err := s.hooks.AfterRefund(r.ID); err != nil {
			return err
		}
	}
	if err := s.recordRefund(ctx, r.ID, ans); err != nil {
		return err
	}
	if s.hooks.AfterRefundRecord != nil {
		return s.hooks.AfterRefundRecord(r.ID)
	}
	return nil
}

func (s *Service) settleRefusal(ctx context.Context, r store.Refund, refused *gateway.RefundRefusedError) error {
	out, found, conclusive, err := s.lookupRefund(ctx, r)
	if err != nil || !conclusive {
		return s.recordRefund(ctx, r.ID, refundAnswer{unknown: "refused (" + refused.Code + ") and the lookup could not tell"})
	}
	if found != nil {
		return s.recordRefund(ctx, r.ID, refundAnswer{succeeded: true, gatewayID: found.ID})
	}
	if out.Refunds == nil {
		// The gateway does not list refunds: its refusal stands (the key was sent, so a refund of ours
		// that went through would have been replayed, not refused).
		return s.recordRefund(ctx, r.ID, refundAnswer{failCode: refused.Code, failMessage: refused.Message})
	}
	return s.recordRefund(ctx, r.ID, refundAnswer{failCode: refused.Code, failMessage: refused.Message})
}

// refundAnswer is what became of a refund: one of succeeded, failed (failCode), unknown, notSent.
type refundAnswer struct {
	succeeded   bool
	gatewayID   string
	failCode    string
	failMessage string
	unknown     string
	notSent     string
}

// lockedRefund is the rows a refund's outcome touches, locked in the one order every writer uses.
type lockedRefund struct {
	lockedCharge
	ref store.Refund
}

func (s *Service) lockForRefund(ctx context.Context, tx pgx.Tx, refundID string) (lockedRefund, error) {
	r, err := s.q(tx).GetRefund(ctx, refundID)
	if err != nil {
		return lockedRefund{}, fmt.Errorf("refund %s: %w", refundID, err)
	}
	lc, err := s.lockForOutcome(ctx, tx, r.AttemptID)
	if err != nil {
		return lockedRefund{}, err
	}
	r, err = s.q(tx).LockRefund(ctx, refundID)
	return lockedRefund{lockedCharge: lc, ref: r}, err
}

// recordRefund applies a refund's outcome in one transaction; a refund already settled is left alone.
func (s *Service) recordRefund(ctx context.Context, refundID string, ans refundAnswer) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		lr, err := s.lockForRefund(ctx, tx, refundID)
		if err != nil {
			return err
		}
		if lr.ref.Status != RefundPending && lr.ref.Status != RefundUnknown {
			return nil
		}
		switch {
		case ans.succeeded:
			return s.refundSucceeded(ctx, tx, lr, ans.gatewayID, now)
		case ans.failCode != "":
			return s.refundFailed(ctx, tx, lr, ans.failCode, ans.failMessage, now)
		case ans.notSent != "":
			// Nothing reached the gateway: try again shortly, without counting a lookup.
			next := now.Add(time.Minute)
			if _, err := s.q(tx).ResolveRefund(ctx, store.ResolveRefundParams{ID: lr.ref.ID, FromStatus: lr.ref.Status, Status: lr.ref.Status,
				FailureReason: strPtr("not sent: " + ans.notSent), LookupCount: lr.ref.LookupCount, NextLookupAt: &next}); err != nil {
				return err
			}
			return s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkResolveRefund, ID: lr.ref.ID, At: next})
		default:
			next := now.Add(lookupDelay(int(lr.ref.LookupCount)))
			if _, err := s.q(tx).ResolveRefund(ctx, store.ResolveRefundParams{ID: lr.ref.ID, FromStatus: lr.ref.Status, Status: RefundUnknown,
				FailureReason: strPtr(ans.unknown), LookupCount: lr.ref.LookupCount, NextLookupAt: &next}); err != nil {
				return err
			}
			return s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkResolveRefund, ID: lr.ref.ID, At: next})
		}
	})
}

// refundSucceeded books money that went back to the card: the refund and its credit note, the attempt's
// and the invoice's refunded amounts (a payment refunded in full is reversed), and the ledger (refunds
// debited, the gateway's clearing account credited).
func (s *Service) refundSucceeded(ctx context.Context, tx pgx.Tx, lr lockedRefund, gatewayID string, now time.Time) error {
	r := lr.ref
	if _, err := s.q(tx).ResolveRefund(ctx, store.ResolveRefundParams{ID: r.ID, FromStatus: r.Status, Status: RefundSucceeded,
		GatewayRefundID: strPtr(gatewayID), LookupCount: r.LookupCount, ResolvedAt: &now}); err != nil {
		return fmt.Errorf("resolve refund %s: %w", r.ID, err)
	}
	cn, err := s.q(tx).SetCreditNoteStatus(ctx, store.SetCreditNoteStatusParams{ID: r.CreditNoteID, Status: "issued", IssuedAt: &now})
	if err != nil {
		return fmt.Errorf("issue credit note %s: %w", r.CreditNoteID, err)
	}
	return s.bookRefund(ctx, tx, lr.lockedCharge, r, cn, now)
}

// bookRefund is the money side of a refund that happened at the gateway.
func (s *Service) bookRefund(ctx context.Context, tx pgx.Tx, lc lockedCharge, r store.Refund, cn store.CreditNote, now time.Time) error {
	att, err := s.q(tx).AddAttemptRefunded(ctx, store.AddAttemptRefundedParams{ID: r.AttemptID, Amount: r.Amount})
	if err != nil {
		return fmt.Errorf("attempt %s refunded: %w", r.AttemptID, err)
	}
	if att.AmountRefunded.Equal(att.Amount) && att.Status == string(statemachine.AttemptSucceeded) {
		next, err := statemachine.FireAttempt(ctx, statemachine.AttemptSucceeded, statemachine.AttemptReverse)
		if err != nil {
			return err
		}
		if _, err := s.q(tx).ResolveAttempt(ctx, store.ResolveAttemptParams{ID: att.ID, FromStatus: att.Status, Status: string(next),
			DeclineCode: att.DeclineCode, DeclineClass: att.DeclineClass, FailureReason: att.FailureReason,
			GatewayPaymentKey: att.GatewayPaymentKey, ResolvedAt: att.ResolvedAt, LookupCount: att.LookupCount}); err != nil {
			return fmt.Errorf("reverse attempt %s: %w", att.ID, err)
		}
	}
	if _, err := s.q(tx).AddInvoiceRefunded(ctx, store.AddInvoiceRefundedParams{ID: r.InvoiceID, Amount: r.Amount}); err != nil {
		return err
	}
	if err := s.post(ctx, tx, "refund", r.ID, r.CustomerID, "refund "+cn.Number+" of "+att.OrderID, now,
		Entry{Account: AccountRefunds, Currency: r.Currency, Amount: r.Amount},
		Entry{Account: ClearingAccount(r.Gateway), Currency: r.Currency, Amount: r.Amount.Neg()}); err != nil {
		return err
	}
	refs := Refs{CustomerID: r.CustomerID, SubscriptionID: deref(lc.inv.SubscriptionID), InvoiceID: r.InvoiceID, AttemptID: r.AttemptID}
	data := creditNoteData(cn)
	data["refund_id"], data["order_id"], data["gateway"] = r.ID, att.OrderID, r.Gateway
	if err := s.emit(ctx, tx, EvtRefundSucceeded, refs, now, data); err != nil {
		return err
	}
	return s.emit(ctx, tx, EvtCreditNoteIssued, refs, now, data)
}

func (s *Service) refundFailed(ctx context.Context, tx pgx.Tx, lr lockedRefund, code, msg string, now time.Time) error {
	r := lr.ref
	if _, err := s.q(tx).ResolveRefund(ctx, store.ResolveRefundParams{ID: r.ID, FromStatus: r.Status, Status: RefundFailed,
		FailureCode: strPtr(code), FailureReason: strPtr(msg), LookupCount: r.LookupCount, ResolvedAt: &now}); err != nil {
		return fmt.Errorf("fail refund %s: %w", r.ID, err)
	}
	cn, err := s.q(tx).SetCreditNoteStatus(ctx, store.SetCreditNoteStatusParams{ID: r.CreditNoteID, Status: "void", VoidedAt: &now})
	if err != nil {
		return fmt.Errorf("void credit note %s: %w", r.CreditNoteID, err)
	}
	refs := Refs{CustomerID: r.CustomerID, SubscriptionID: deref(lr.inv.SubscriptionID), InvoiceID: r.InvoiceID, AttemptID: r.AttemptID}
	data := creditNoteData(cn)
	data["refund_id"], data["failure_code"], data["failure_reason"] = r.ID, code, msg
	if err := s.emit(ctx, tx, EvtRefundFailed, refs, now, data); err != nil {
		return err
	}
	return s.emit(ctx, tx, EvtCreditNoteVoided, refs, now, data)
}

// lookupRefund asks the gateway for the refund's payment. found is the gateway's record of this refund
// (by the idempotency key the adapters echo); conclusive says the payment was read and, when its gateway
// lists refunds, the list can be trusted to hold ours if it happened.
func (s *Service) lookupRefund(ctx context.Context, r store.Refund) (gateway.Outcome, *gateway.Refund, bool, error) {
	gw, ok := s.gateways.Get(r.Gateway)
	if !ok {
		return gateway.Outcome{}, nil, false, nil
	}
	att, err := s.q(s.pool).GetAttempt(ctx, r.AttemptID)
	if err != nil {
		return gateway.Outcome{}, nil, false, err
	}
	out, err := gw.Lookup(ctx, att.OrderID)
	if err != nil {
		return out, nil, false, err
	}
	if out.Kind != gateway.Succeeded && out.Kind != gateway.Canceled {
		return out, nil, false, nil
	}
	for i := range out.Refunds {
		if out.Refunds[i].Reference == r.IdempotencyKey {
			return out, &out.Refunds[i], true, nil
		}
	}
	return out, nil, out.Refunds != nil, nil
}

// ResolveRefund settles a pending or unknown refund by looking its payment up at the gateway: the refund
// is there (succeeded), or it is not and the same refund is resent with the same idempotency key, which
// the gateway answers with the first outcome if there was one. Never guessed: an inconclusive lookup
// schedules the next one.
func (s *Service) ResolveRefund(ctx context.Context, refundID string) error {
	return s.resolveRefund(ctx, refundID, false)
}

// resolveRefund is ResolveRefund; now settles the refund without waiting for its next lookup time (a
// retried request wants its answer; a lookup and a resend with the same key are always safe).
func (s *Service) resolveRefund(ctx context.Context, refundID string, now bool) error {
	r, err := s.q(s.pool).GetRefund(ctx, refundID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.Status != RefundPending && r.Status != RefundUnknown {
		return nil
	}
	at := s.clock.Now()
	if !now && r.NextLookupAt != nil && r.NextLookupAt.After(at) {
		return nil
	}
	out, found, conclusive, err := s.lookupRefund(ctx, r)
	switch {
	case errors.Is(err, gateway.ErrTryLater):
		return s.recordRefund(ctx, r.ID, refundAnswer{notSent: "lookup not sent: " + err.Error()})
	case err != nil:
		return s.bumpRefund(ctx, r, "lookup failed: "+err.Error())
	case found != nil:
		return s.recordRefund(ctx, r.ID, refundAnswer{succeeded: true, gatewayID: found.ID})
	case out.Kind != gateway.Succeeded && out.Kind != gateway.Canceled:
		return s.bumpRefund(ctx, r, "lookup inconclusive: "+string(out.Kind)+" "+out.Reason)
	case !conclusive && r.SentAt != nil && at.Sub(*r.SentAt) > resendWindow:
		// The gateway does not list refunds and its idempotency window is over: a resend could refund
		// twice. Support reads the gateway and settles it (docs/refunds.md).
		return s.bumpRefund(ctx, r, "the gateway does not list refunds and the resend window is over; needs support")
	default:
		// Not there: the request never arrived, or is still on its way (a resend then answers
		// "processing" and stays unknown). Resend the same refund.
		return s.sendRefund(ctx, r)
	}
}

func (s *Service) bumpRefund(ctx context.Context, r store.Refund, reason string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		lr, err := s.lockForRefund(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if lr.ref.Status != RefundPending && lr.ref.Status != RefundUnknown {
			return nil
		}
		n := lr.ref.LookupCount + 1
		next := now.Add(lookupDelay(int(n)))
		if _, err := s.q(tx).ResolveRefund(ctx, store.ResolveRefundParams{ID: r.ID, FromStatus: lr.ref.Status, Status: RefundUnknown,
			FailureReason: strPtr(reason), LookupCount: n, NextLookupAt: &next}); err != nil {
			return err
		}
		return s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkResolveRefund, ID: r.ID, At: next})
	})
}

// --- reads --------------------------------------------------------------------------------------------

// GetCreditNote returns a credit note with its lines and refund.
func (s *Service) GetCreditNote(ctx context.Context, id string) (CreditNote, error) {
	row, err := s.q(s.pool).GetCreditNote(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return CreditNote{}, apperr.NotFound("credit_note", id)
	}
	if err != nil {
		return CreditNote{}, err
	}
	return s.creditNoteView(ctx, row)
}

func (s *Service) creditNoteView(ctx context.Context, r store.CreditNote) (CreditNote, error) {
	v := CreditNote{ID: r.ID, Number: r.Number, CustomerID: r.CustomerID, InvoiceID: r.InvoiceID, Currency: r.Currency,
		Amount: money.String(r.Amount, r.Currency), Reason: r.Reason, Method: r.Method, Status: r.Status, Origin: r.Origin,
		Lines: []CreditNoteLine{}, CreatedAt: r.CreatedAt, IssuedAt: r.IssuedAt, VoidedAt: r.VoidedAt}
	lines, err := s.q(s.pool).CreditNoteLines(ctx, r.ID)
	if err != nil {
		return v, err
	}
	for _, l := range lines {
		v.Lines = append(v.Lines, CreditNoteLine{Description: l.Description, Amount: money.String(l.Amount, r.Currency)})
	}
	if r.Method == CreditNoteRefund {
		ref, err := s.q(s.pool).RefundForCreditNote(ctx, r.ID)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return v, err
		}
		if err == nil {
			v.Refund = &Refund{ID: ref.ID, Status: ref.Status, Amount: money.String(ref.Amount, ref.Currency), Currency: ref.Currency,
				Gateway: ref.Gateway, AttemptID: ref.AttemptID, GatewayRefundID: ref.GatewayRefundID, FailureCode: ref.FailureCode,
				FailureReason: ref.FailureReason, CreatedAt: ref.CreatedAt, ResolvedAt: ref.ResolvedAt}
		}
	}
	return v, nil
}

// CreditNoteFilter narrows ListCreditNotes.
type CreditNoteFilter struct {
	CustomerID string
	InvoiceID  string
}

// ListCreditNotes lists credit notes, oldest first.
func (s *Service) ListCreditNotes(ctx context.Context, f CreditNoteFilter, p page.Request) (page.List[CreditNote], error) {
	rows, err := s.q(s.pool).ListCreditNotes(ctx, store.ListCreditNotesParams{CustomerID: strPtr(f.CustomerID), InvoiceID: strPtr(f.InvoiceID),
		HasCursor: p.HasCursor(), AfterTime: p.AfterTime, AfterID: p.AfterID, Max: int32(p.Limit + 1)})
	if err != nil {
		return page.List[CreditNote]{}, err
	}
	out := make([]CreditNote, 0, len(rows))
	for _, r := range rows {
		v, err := s.creditNoteView(ctx, r)
		if err != nil {
			return page.List[CreditNote]{}, err
		}
		out = append(out, v)
	}
	return page.Build(out, p.Limit, func(c CreditNote) (time.Time, string) { return c.CreatedAt, c.ID }), nil
}
