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
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
	"github.com/dunningworks/billing/statemachine"
)

// ChargeResult says what one collection did.
type ChargeResult struct {
	AttemptID    string
	Outcome      gateway.OutcomeKind // succeeded, declined or unknown; empty when nothing was sent
	DeclineCode  string
	DeclineClass gateway.DeclineClass
	// Deferred is set when the gateway could not be asked (open circuit, rate limit): a technical retry
	// is scheduled and dunning does not advance.
	Deferred bool
	// NoKey is set when the customer has no chargeable billing key.
	NoKey bool
	// InFlight is set when an earlier attempt's outcome is still unresolved, so no new attempt was made.
	InFlight bool
	// subBefore and subAfter are the invoice's subscription as the outcome's transaction found and left it
	// (nil when the outcome was not recorded now), so a caller can tell what its own charge did.
	subBefore, subAfter *store.Subscription
}

// lookupDelays is the reconciler's schedule for an unresolved attempt: 1 min, 5 min, 30 min, 2 h, daily.
var lookupDelays = []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 24 * time.Hour}

func lookupDelay(n int) time.Duration {
	if n >= len(lookupDelays) {
		return lookupDelays[len(lookupDelays)-1]
	}
	return lookupDelays[n]
}

// CollectOptions tune Collect.
type CollectOptions struct {
	// Force charges now even if the invoice's next attempt is not yet due (support's "retry now").
	Force bool
}

// Collect charges an open invoice if its next attempt is due. It never makes a second attempt while one is
// in flight: that one is resolved instead (by lookup).
func (s *Service) Collect(ctx context.Context, invoiceID string, opts CollectOptions) (ChargeResult, error) {
	var att store.PaymentAttempt
	var res ChargeResult
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		sub, inv, err := s.lockInvoiceChain(ctx, tx, invoiceID)
		if err != nil {
			return err
		}
		if inv.Status != string(statemachine.InvoiceOpen) {
			return nil
		}
		if !opts.Force && (inv.NextAttemptAt == nil || inv.NextAttemptAt.After(now)) {
			return nil
		}
		if sub != nil && dunningPaused(*sub, now) {
			// Support paused dunning: nothing is charged, not even when forced (support's retry refuses
			// first); resuming moves the retry on (pause.go).
			return nil
		}
		att, res, err = s.newAttempt(ctx, tx, inv, now)
		return err
	})
	if err != nil || att.ID == "" {
		return res, err
	}
	return s.send(ctx, att)
}

// lockInvoiceChain locks an invoice's subscription (if any) and then the invoice: the lock order every
// writer uses, so two writers never wait on each other in a circle.
func (s *Service) lockInvoiceChain(ctx context.Context, tx pgx.Tx, invoiceID string) (*store.Subscription, store.Invoice, error) {
	inv, err := s.q(tx).GetInvoice(ctx, invoiceID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, inv, apperr.NotFound("invoice", invoiceID)
	}
	if err != nil {
		return nil, inv, err
	}
	var sub *store.Subscription
	if inv.SubscriptionID != nil {
		row, err := s.q(tx).LockSubscription(ctx, *inv.SubscriptionID)
		if err != nil {
			return nil, inv, err
		}
		sub = &row
	}
	inv, err = s.q(tx).LockInvoice(ctx, invoiceID)
	return sub, inv, err
}

// inFlight returns the id of the invoice's unresolved attempt, or "".
func (s *Service) inFlight(ctx context.Context, tx pgx.Tx, invoiceID string) (string, error) {
	att, err := s.q(tx).InFlightAttempt(ctx, invoiceID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return att.ID, err
}

// newAttempt persists a pending attempt for the invoice's amount due on the customer's chargeable key.
// The caller holds the invoice row lock and commits before sending.
func (s *Service) newAttempt(ctx context.Context, tx pgx.Tx, inv store.Invoice, now time.Time) (store.PaymentAttempt, ChargeResult, error) {
	if inflight, err := s.q(tx).InFlightAttempt(ctx, inv.ID); err == nil {
		// The in-flight attempt's resolution decides what comes next; nothing else is due until then.
		if inv.NextAttemptAt != nil {
			p := invoiceParams(inv)
			p.NextAttemptAt = nil
			if _, err := s.q(tx).UpdateInvoice(ctx, p); err != nil {
				return store.PaymentAttempt{}, ChargeResult{}, err
			}
		}
		return store.PaymentAttempt{}, ChargeResult{AttemptID: inflight.ID, InFlight: true}, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return store.PaymentAttempt{}, ChargeResult{}, err
	}
	key, backup, err := s.keyForAttempt(ctx, tx, inv)
	if errors.Is(err, ErrNoChargeableKey) {
		return store.PaymentAttempt{}, ChargeResult{NoKey: true}, s.applyNoKey(ctx, tx, inv, now)
	}
	if err != nil {
		return store.PaymentAttempt{}, ChargeResult{}, fmt.Errorf("chargeable key: %w", err)
	}
	seq := inv.AttemptCount + 1
	// Deterministic per attempt, and reused unchanged on every resend of it: the gateway refuses a second
	// charge for one order id, which is what makes a resend safe.
	orderID := fmt.Sprintf("%s-%d", inv.ID, seq)
	next := now.Add(lookupDelay(0))
	att, err := s.q(tx).CreateAttempt(ctx, store.CreateAttemptParams{
		ID: ids.New("pay"), InvoiceID: inv.ID, CustomerID: inv.CustomerID, BillingKeyID: &key.ID, Gateway: key.Gateway,
		Seq: seq, OrderID: orderID, IdempotencyKey: "charge-" + orderID, Amount: inv.AmountDue, Currency: inv.Currency,
		NextLookupAt: &next, CreatedAt: now,
	})
	if err != nil {
		return att, ChargeResult{}, fmt.Errorf("create attempt: %w", err)
	}
	if backup {
		if err := s.markBackupAttempt(ctx, tx, &att); err != nil {
			return att, ChargeResult{}, err
		}
	}
	p := invoiceParams(inv)
	p.AttemptCount = seq
	p.NextAttemptAt = nil
	if _, err := s.q(tx).UpdateInvoice(ctx, p); err != nil {
		return att, ChargeResult{}, fmt.Errorf("count attempt: %w", err)
	}
	// If this process dies before the outcome is recorded, the sweeper's indexed scan of unresolved
	// attempts (payment_attempts_unresolved) finds the attempt by next_lookup_at: no job per attempt.
	return att, ChargeResult{AttemptID: att.ID}, nil
}

// send calls the gateway for a committed attempt (no transaction is open) and records the outcome.
func (s *Service) send(ctx context.Context, att store.PaymentAttempt) (ChargeResult, error) {
	if s.hooks.BeforeCharge != nil {
		if err := s.hooks.BeforeCharge(att.ID); err != nil {
			return ChargeResult{AttemptID: att.ID}, err
		}
	}
	outcome, err := s.charge(ctx, att)
	if err != nil {
		return s.recordNotSent(ctx, att.ID, err)
	}
	if s.hooks.AfterCharge != nil {
		if err := s.hooks.AfterCharge(att.ID, outcome); err != nil {
			return ChargeResult{AttemptID: att.ID}, err
		}
	}
	res, err := s.recordOutcome(ctx, att.ID, outcome)
	if err == nil && s.hooks.AfterRecord != nil {
		err = s.hooks.AfterRecord(att.ID)
	}
	return res, err
}

// charge sends the attempt to its gateway. A returned error means the request was certainly not sent.
func (s *Service) charge(ctx context.Context, att store.PaymentAttempt) (gateway.Outcome, error) {
	gw, ok := s.gateways.Get(att.Gateway)
	if !ok {
		return gateway.Outcome{}, fmt.Errorf("%w: gateway %q is not enabled", gateway.ErrTryLater, att.Gateway)
	}
	if att.BillingKeyID == nil {
		return gateway.Outcome{}, errors.New("attempt has no billing key")
	}
	token, customerKey, err := s.vault.Token(ctx, s.pool, *att.BillingKeyID)
	if err != nil {
		return gateway.Outcome{}, fmt.Errorf("billing key %s: %w", *att.BillingKeyID, err)
	}
	// Counted before the request leaves, in a write of its own that commits at once: a process that dies
	// mid-send leaves send_count > 0 behind, so a pending attempt with send_count = 0 provably never
	// reached the gateway. A send the guard refuses (open circuit) is counted too; failure_reason says so.
	sentAt := s.clock.Now()
	if err := s.q(s.pool).MarkAttemptSent(ctx, store.MarkAttemptSentParams{ID: att.ID, SentAt: &sentAt}); err != nil {
		return gateway.Outcome{}, fmt.Errorf("record the send of attempt %s: %w", att.ID, err)
	}
	inv, err := s.q(s.pool).GetInvoice(ctx, att.InvoiceID)
	if err != nil {
		return gateway.Outcome{}, fmt.Errorf("invoice %s: %w", att.InvoiceID, err)
	}
	out, err := gw.Charge(ctx, chargeRequest(att, KeyToken{Token: token, CustomerKey: customerKey}, shareOf(inv, inv.TaxFree, att.Amount)))
	if err != nil {
		return out, err
	}
	s.log.Debug("charge answered", "attempt_id", att.ID, "invoice_id", att.InvoiceID, "customer_id", att.CustomerID,
		"outcome", out.Kind, "decline_code", out.DeclineCode, "reason", out.Reason)
	return out, nil
}

// chargeRequest is the one request an attempt is sent as, by the batch, by a single charge and by every
// resend: a gateway answers a second send of an order's idempotency key with the first one's answer only
// if the request is the same (pgsim, like Stripe, refuses a different body under a used key), so any
// difference between two paths would turn a safe resend into a refusal while the first send charged.
func chargeRequest(att store.PaymentAttempt, tok KeyToken, taxFree decimal.Decimal) gateway.ChargeRequest {
	return gateway.ChargeRequest{
		BillingKey: tok.Token, CustomerKey: tok.CustomerKey, OrderID: att.OrderID, IdempotencyKey: att.IdempotencyKey,
		Amount: att.Amount, Currency: att.Currency, OrderName: "Invoice " + att.InvoiceID, TaxFreeAmount: taxFree,
	}
}

// lockedCharge is the rows an outcome touches, locked in the one order every writer uses:
// subscription, then invoice, then attempt.
type lockedCharge struct {
	sub *store.Subscription
	inv store.Invoice
	att store.PaymentAttempt
}

func (s *Service) lockForOutcome(ctx context.Context, tx pgx.Tx, attemptID string) (lockedCharge, error) {
	var lc lockedCharge
	att, err := s.q(tx).GetAttempt(ctx, attemptID)
	if err != nil {
		return lc, fmt.Errorf("attempt %s: %w", attemptID, err)
	}
	inv, err := s.q(tx).GetInvoice(ctx, att.InvoiceID)
	if err != nil {
		return lc, err
	}
	if inv.SubscriptionID != nil {
		sub, err := s.q(tx).LockSubscription(ctx, *inv.SubscriptionID)
		if err != nil {
			return lc, err
		}
		lc.sub = &sub
	}
	if lc.inv, err = s.q(tx).LockInvoice(ctx, att.InvoiceID); err != nil {
		return lc, err
	}
	lc.att, err = s.q(tx).LockAttempt(ctx, attemptID)
	return lc, err
}

// recordOutcome applies a gateway's answer in one transaction. It is idempotent: an attempt that is
// already resolved is left as it is (a second worker, a webhook and a lookup may all race here).
func (s *Service) recordOutcome(ctx context.Context, attemptID string, out gateway.Outcome) (ChargeResult, error) {
	var res ChargeResult
	var observe func() // counted once the outcome is committed
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		res, observe, err = s.recordOutcomeTx(ctx, tx, attemptID, out, s.clock.Now())
		return err
	})
	if err == nil && observe != nil {
		observe()
	}
	return res, err
}

// recordOutcomeTx is recordOutcome in the caller's transaction (a batch records a group in one); observe,
// when set, counts the outcome once the transaction has committed.
func (s *Service) recordOutcomeTx(ctx context.Context, tx pgx.Tx, attemptID string, out gateway.Outcome, now time.Time) (ChargeResult, func(), error) {
	res := ChargeResult{AttemptID: attemptID, Outcome: out.Kind, DeclineCode: out.DeclineCode, DeclineClass: out.DeclineClass}
	lc, err := s.lockForOutcome(ctx, tx, attemptID)
	if err != nil {
		return res, nil, err
	}
	if lc.att.Status != string(statemachine.AttemptPending) && lc.att.Status != string(statemachine.AttemptUnknown) {
		if out.Kind == gateway.Succeeded && lc.att.Status != string(statemachine.AttemptSucceeded) {
			// Money the gateway took on an attempt already ended without it: nothing here can book it
			// (the invoice may have been paid another way since); reconciliation reports the gateway's
			// payment as one we do not have, for support to refund or apply. Said loudly, never dropped.
			s.log.ErrorContext(ctx, "the gateway reports a payment on an attempt already recorded without one; reconciliation will report it",
				"attempt_id", lc.att.ID, "invoice_id", lc.att.InvoiceID, "status", lc.att.Status, "gateway", lc.att.Gateway,
				"payment_key", out.PaymentKey)
		}
		return resultFromAttempt(lc.att), nil, nil
	}
	observe := func() { s.metrics.observeOutcome(lc.att.Gateway, lc.att.Status, out) }
	var before store.Subscription
	if lc.sub != nil {
		before = *lc.sub
	}
	switch out.Kind {
	case gateway.Succeeded, gateway.Canceled:
		// Canceled (or partly canceled) means collected and then refunded at the gateway: the payment is
		// booked, then the refunds, so the books show both movements and what stayed with us.
		if out.Kind == gateway.Canceled {
			res.Outcome = gateway.Succeeded
		}
		if err = s.applyPayment(ctx, tx, lc, out, now); err == nil {
			_, err = s.applyGatewayRefunds(ctx, tx, lc, out, now)
		}
	case gateway.Declined:
		err = s.applyDecline(ctx, tx, lc, out, now)
	case gateway.Refused:
		// The gateway refused our side of the request before processing it (a rotated secret key, a
		// currency it does not take): no money moved, the customer did nothing wrong, and resending the
		// same request cannot succeed. The attempt ends here, visibly; the invoice is tried again on the
		// technical backoff, which heals it once an operator fixes our side (the alert says what).
		code := out.DeclineCode
		if code == "" {
			code = "refused"
		}
		s.log.ErrorContext(ctx, "the gateway refused our request; the attempt failed without a resend", "attempt_id", lc.att.ID,
			"invoice_id", lc.att.InvoiceID, "customer_id", lc.att.CustomerID, "gateway", lc.att.Gateway, "gateway_code", code)
		err = s.applyFailed(ctx, tx, lc, "refused by the gateway (merchant side, not the card): "+code+": "+out.Message, now)
	default:
		err = s.applyUnknown(ctx, tx, lc, out.Reason, now)
	}
	if err != nil || lc.sub == nil {
		return res, observe, err
	}
	after, err := s.q(tx).GetSubscription(ctx, before.ID)
	if err != nil {
		return res, observe, fmt.Errorf("subscription after the outcome: %w", err)
	}
	res.subBefore, res.subAfter = &before, &after
	return res, observe, nil
}

func resultFromAttempt(a store.PaymentAttempt) ChargeResult {
	r := ChargeResult{AttemptID: a.ID}
	switch a.Status {
	case string(statemachine.AttemptSucceeded):
		r.Outcome = gateway.Succeeded
	case string(statemachine.AttemptDeclined):
		r.Outcome, r.DeclineCode = gateway.Declined, deref(a.DeclineCode)
		r.DeclineClass = gateway.DeclineClass(deref(a.DeclineClass))
	case string(statemachine.AttemptUnknown), string(statemachine.AttemptPending):
		r.Outcome = gateway.Unknown
	case string(statemachine.AttemptFailed):
		r.Deferred = true
	}
	return r
}

// applyPayment: attempt succeeded, invoice paid (or partly), ledger posted, subscription active.
func (s *Service) applyPayment(ctx context.Context, tx pgx.Tx, lc lockedCharge, out gateway.Outcome, now time.Time) error {
	att, inv := lc.att, lc.inv
	if _, err := statemachine.FireAttempt(ctx, statemachine.AttemptStatus(att.Status), statemachine.AttemptSucceed); err != nil {
		return err
	}
	if out.Kind == gateway.Succeeded && !out.Amount.IsZero() && !out.Amount.Equal(att.Amount) {
		s.log.Error("gateway charged a different amount than the attempt", "attempt_id", att.ID, "ours", att.Amount, "theirs", out.Amount)
	}
	if err := s.checkVAT(ctx, tx, inv, att, out, now); err != nil {
		return err
	}
	pk := strPtr(out.PaymentKey)
	if _, err := s.q(tx).ResolveAttempt(ctx, store.ResolveAttemptParams{ID: att.ID, FromStatus: att.Status,
		Status: string(statemachine.AttemptSucceeded), GatewayPaymentKey: pk, ResolvedAt: &now, LookupCount: att.LookupCount}); err != nil {
		return fmt.Errorf("resolve attempt: %w", err)
	}
	refs := Refs{CustomerID: inv.CustomerID, SubscriptionID: deref(inv.SubscriptionID), InvoiceID: inv.ID, AttemptID: att.ID}
	if err := s.emit(ctx, tx, EvtPaymentSucceeded, refs, now, map[string]any{"amount": money.String(att.Amount, att.Currency), "currency": att.Currency, "order_id": att.OrderID}); err != nil {
		return err
	}
	if att.Backup {
		if err := s.emitBackupCharged(ctx, tx, att, deref(inv.SubscriptionID), now); err != nil {
			return err
		}
	}
	receivable := ReceivableAccount(inv.CustomerID)
	if inv.Status == string(statemachine.InvoiceVoided) || inv.Status == string(statemachine.InvoicePaid) {
		// Money arrived for an invoice that no longer wants it: hold it as customer credit for support
		// to refund or apply; reconciliation shows it.
		receivable = CreditAccount(inv.CustomerID)
	}
	if err := s.post(ctx, tx, "payment", att.ID, inv.CustomerID, "payment "+att.OrderID, now,
		Entry{Account: ClearingAccount(att.Gateway), Currency: att.Currency, Amount: att.Amount},
		Entry{Account: receivable, Currency: att.Currency, Amount: att.Amount.Neg()}); err != nil {
		return err
	}
	if receivable != ReceivableAccount(inv.CustomerID) {
		return nil
	}
	return s.applyInvoicePayment(ctx, tx, lc.sub, inv, att.Amount, now)
}

// shareOf is part's share of a payment of amount on the invoice: all of it when the payment is the whole
// total, else part × amount / total rounded (a payment after credit was applied carries that share of the
// tax-free part and of the VAT). Invoices are fixed once finalized, so every resend sends the same.
func shareOf(inv store.Invoice, part, amount decimal.Decimal) decimal.Decimal {
	if !inv.Total.IsPositive() || amount.GreaterThanOrEqual(inv.Total) {
		return decimal.Max(decimal.Zero, part)
	}
	places, err := money.MinorUnit(inv.Currency)
	if err != nil {
		return decimal.Zero
	}
	return decimal.Max(decimal.Zero, part.Mul(amount).DivRound(inv.Total, places))
}

// EvtPaymentTaxMismatch says the gateway reported another VAT than the invoice's for a payment: the tax
// owed in our ledger and what the gateway reports to the tax authority disagree, and someone must look.
const EvtPaymentTaxMismatch = "payment.tax_mismatch"

// checkVAT compares the VAT the gateway reports for a payment (Toss's vat) with the invoice's tax share
// of it. A difference does not stop the payment — the money moved — but is logged and emitted.
func (s *Service) checkVAT(ctx context.Context, tx pgx.Tx, inv store.Invoice, att store.PaymentAttempt, out gateway.Outcome, now time.Time) error {
	if out.VAT == nil {
		return nil
	}
	want := shareOf(inv, inv.Tax, att.Amount)
	if out.VAT.Equal(want) {
		return nil
	}
	s.log.Error("gateway reports another VAT than the invoice's", "attempt_id", att.ID, "invoice_id", inv.ID,
		"customer_id", inv.CustomerID, "ours", want, "theirs", *out.VAT)
	refs := Refs{CustomerID: inv.CustomerID, SubscriptionID: deref(inv.SubscriptionID), InvoiceID: inv.ID, AttemptID: att.ID}
	return s.emit(ctx, tx, EvtPaymentTaxMismatch, refs, now, map[string]any{"expected_vat": money.String(want, inv.Currency),
		"reported_vat": money.String(*out.VAT, inv.Currency), "currency": inv.Currency, "order_id": att.OrderID})
}

// applyInvoicePayment credits amount to the invoice; when fully paid it fires pay and heals the
// subscription. Shared by gateway payments and support's offline payments.
func (s *Service) applyInvoicePayment(ctx context.Context, tx pgx.Tx, sub *store.Subscription, inv store.Invoice, amount decimal.Decimal, now time.Time) error {
	p := invoiceParams(inv)
	p.AmountPaid = inv.AmountPaid.Add(amount)
	p.AmountDue = decimal.Max(decimal.Zero, inv.AmountDue.Sub(amount))
	p.NextAttemptAt = nil
	refs := Refs{CustomerID: inv.CustomerID, SubscriptionID: deref(inv.SubscriptionID), InvoiceID: inv.ID}
	if p.AmountDue.IsZero() {
		next, err := statemachine.FireInvoice(ctx, statemachine.InvoiceStatus(inv.Status), statemachine.InvoicePay, statemachine.InvoiceFacts{AmountPaidIsZero: inv.AmountPaid.IsZero()})
		if err != nil {
			return err
		}
		if inv.Status == string(statemachine.InvoiceUncollectible) {
			// A late payment on a written-off invoice: undo the bad debt for what came in.
			if err := s.post(ctx, tx, "write_off_reversed", inv.ID, inv.CustomerID, "late payment "+inv.ID, now,
				Entry{Account: ReceivableAccount(inv.CustomerID), Currency: inv.Currency, Amount: inv.AmountDue},
				Entry{Account: AccountBadDebt, Currency: inv.Currency, Amount: inv.AmountDue.Neg()}); err != nil && !errors.Is(err, errAlreadyPosted) {
				return err
			}
		}
		p.Status, p.PaidAt = string(next), &now
	}
	row, err := s.q(tx).UpdateInvoice(ctx, p)
	if err != nil {
		return fmt.Errorf("pay invoice %s: %w", inv.ID, err)
	}
	if row.Status != string(statemachine.InvoicePaid) {
		return nil
	}
	if err := s.emit(ctx, tx, EvtInvoicePaid, refs, now, map[string]any{"amount_paid": money.String(row.AmountPaid, row.Currency), "currency": row.Currency}); err != nil {
		return err
	}
	if sub != nil {
		return s.onInvoicePaid(ctx, tx, *sub, row, now)
	}
	return nil
}

// applyDecline: attempt declined; dunning decides what comes next.
func (s *Service) applyDecline(ctx context.Context, tx pgx.Tx, lc lockedCharge, out gateway.Outcome, now time.Time) error {
	att, inv := lc.att, lc.inv
	if _, err := statemachine.FireAttempt(ctx, statemachine.AttemptStatus(att.Status), statemachine.AttemptDecline); err != nil {
		return err
	}
	class := out.DeclineClass
	if class != gateway.Hard {
		class = gateway.Soft
	}
	code := out.DeclineCode
	if code == "" {
		code = "declined"
	}
	cls := string(class)
	if _, err := s.q(tx).ResolveAttempt(ctx, store.ResolveAttemptParams{ID: att.ID, FromStatus: att.Status,
		Status: string(statemachine.AttemptDeclined), DeclineCode: &code, DeclineClass: &cls, FailureReason: strPtr(out.Message),
		ResolvedAt: &now, LookupCount: att.LookupCount}); err != nil {
		return fmt.Errorf("resolve attempt: %w", err)
	}
	if class == gateway.Hard && att.BillingKeyID != nil {
		if err := s.vault.MarkHardDeclined(ctx, tx, *att.BillingKeyID, code, now); err != nil {
			return err
		}
	}
	refs := Refs{CustomerID: inv.CustomerID, SubscriptionID: deref(inv.SubscriptionID), InvoiceID: inv.ID, AttemptID: att.ID}
	data := map[string]any{"decline_code": code, "decline_class": cls, "order_id": att.OrderID}
	if err := s.emit(ctx, tx, EvtPaymentFailed, refs, now, data); err != nil {
		return err
	}
	if err := s.emit(ctx, tx, EvtInvoicePaymentFailed, refs, now, data); err != nil {
		return err
	}
	declines, err := s.q(tx).CountDeclines(ctx, inv.ID)
	if err != nil {
		return err
	}
	var cardAttempts int32
	ap, err := s.policyFor(ctx, tx, inv.CustomerID, lc.sub)
	if err != nil {
		return err
	}
	if att.Backup {
		return s.afterBackupDecline(ctx, tx, lc, ap, now)
	}
	if att.BillingKeyID != nil {
		if cardAttempts, err = s.q(tx).CountCardAttempts(ctx, store.CountCardAttemptsParams{BillingKeyID: att.BillingKeyID, Since: now.Add(-ap.policy.CardWindow.D())}); err != nil {
			return err
		}
	}
	return s.afterFailure(ctx, tx, lc.sub, inv, ap, failure{hard: class == gateway.Hard, declines: int(declines), cardAttempts: int(cardAttempts), code: code, keyID: att.BillingKeyID}, now)
}

// applyNoKey: the invoice cannot be charged because the customer has no usable key. Like a hard
// decline, only a new key heals it; no attempt is recorded because nothing was sent.
func (s *Service) applyNoKey(ctx context.Context, tx pgx.Tx, inv store.Invoice, now time.Time) error {
	var sub *store.Subscription
	if inv.SubscriptionID != nil {
		// The invoice lock is held; the subscription is read, and written with compare-and-set.
		row, err := s.q(tx).GetSubscription(ctx, *inv.SubscriptionID)
		if err != nil {
			return err
		}
		sub = &row
	}
	refs := Refs{CustomerID: inv.CustomerID, SubscriptionID: deref(inv.SubscriptionID), InvoiceID: inv.ID}
	if err := s.emit(ctx, tx, EvtInvoicePaymentFailed, refs, now, map[string]any{"reason": "no_chargeable_billing_key"}); err != nil {
		return err
	}
	ap, err := s.policyFor(ctx, tx, inv.CustomerID, sub)
	if err != nil {
		return err
	}
	return s.afterFailure(ctx, tx, sub, inv, ap, failure{hard: true, code: codeNoKey}, now)
}

// applyUnknown: the outcome is not known; the reconciler will look the order up on its schedule.
func (s *Service) applyUnknown(ctx context.Context, tx pgx.Tx, lc lockedCharge, reason string, now time.Time) error {
	att := lc.att
	status := att.Status
	if status == string(statemachine.AttemptPending) {
		next, err := statemachine.FireAttempt(ctx, statemachine.AttemptPending, statemachine.AttemptMarkUnknown)
		if err != nil {
			return err
		}
		status = string(next)
	}
	next := now.Add(lookupDelay(int(att.LookupCount)))
	if _, err := s.q(tx).ResolveAttempt(ctx, store.ResolveAttemptParams{ID: att.ID, FromStatus: att.Status, Status: status,
		FailureReason: strPtr(reason), NextLookupAt: &next, LookupCount: att.LookupCount}); err != nil {
		return fmt.Errorf("mark attempt unknown: %w", err)
	}
	if att.Status == string(statemachine.AttemptPending) {
		refs := Refs{CustomerID: att.CustomerID, SubscriptionID: deref(lc.inv.SubscriptionID), InvoiceID: att.InvoiceID, AttemptID: att.ID}
		if err := s.emit(ctx, tx, EvtPaymentUnknown, refs, now, map[string]any{"reason": reason, "order_id": att.OrderID}); err != nil {
			return err
		}
	}
	return s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkResolveAttempt, ID: att.ID, At: next})
}

// applyFailed: the attempt is proven to have moved no money; a technical retry follows.
func (s *Service) applyFailed(ctx context.Context, tx pgx.Tx, lc lockedCharge, reason string, now time.Time) error {
	att, inv := lc.att, lc.inv
	if _, err := statemachine.FireAttempt(ctx, statemachine.AttemptStatus(att.Status), statemachine.AttemptFail); err != nil {
		return err
	}
	if _, err := s.q(tx).ResolveAttempt(ctx, store.ResolveAttemptParams{ID: att.ID, FromStatus: att.Status,
		Status: string(statemachine.AttemptFailed), FailureReason: &reason, ResolvedAt: &now, LookupCount: att.LookupCount}); err != nil {
		return fmt.Errorf("fail attempt: %w", err)
	}
	refs := Refs{CustomerID: inv.CustomerID, SubscriptionID: deref(inv.SubscriptionID), InvoiceID: inv.ID, AttemptID: att.ID}
	if err := s.emit(ctx, tx, EvtPaymentDeferred, refs, now, map[string]any{"reason": reason}); err != nil {
		return err
	}
	if inv.Status != string(statemachine.InvoiceOpen) {
		return nil
	}
	ap, err := s.policyFor(ctx, tx, inv.CustomerID, lc.sub)
	if err != nil {
		return err
	}
	policy := ap.policy
	n, err := s.q(tx).CountConsecutiveTechnicalFailures(ctx, inv.ID)
	if err != nil {
		return err
	}
	at := now.Add(policy.TechnicalDelay(int(n)))
	p := invoiceParams(inv)
	p.NextAttemptAt = &at
	if _, err := s.q(tx).UpdateInvoice(ctx, p); err != nil {
		return err
	}
	return s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkCollect, ID: inv.ID, At: at})
}

// recordNotSent handles a charge the gateway never received (open circuit, rate limit, bad input): the
// attempt fails technically and the invoice gets a short technical retry. Dunning does not move.
func (s *Service) recordNotSent(ctx context.Context, attemptID string, cause error) (ChargeResult, error) {
	res := ChargeResult{AttemptID: attemptID, Deferred: true}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		lc, err := s.lockForOutcome(ctx, tx, attemptID)
		if err != nil {
			return err
		}
		switch lc.att.Status {
		case string(statemachine.AttemptPending):
			defer s.metrics.observeNotSent(lc.att.Gateway)
			return s.applyFailed(ctx, tx, lc, "not sent: "+cause.Error(), now)
		case string(statemachine.AttemptUnknown):
			// A resend could not go out: the earlier send may still have charged, so stay unknown.
			return s.applyUnknown(ctx, tx, lc, "resend not sent: "+cause.Error(), now)
		default:
			res = resultFromAttempt(lc.att)
			return nil
		}
	})
	return res, err
}
