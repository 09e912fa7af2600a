package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
	"github.com/dunningworks/billing/statemachine"
)

// Refunds made at the gateway on their own (a cancel in Toss's dashboard, a refund in Stripe's) land on
// the same records as ours: a credit note (origin gateway), a refund row, the attempt's and the invoice's
// refunded amounts, the ledger (refunds / clearing), the events and so the outgoing webhooks. They are
// found by a webhook (a hint, re-fetched), by the lookup of an unsettled attempt, or by reconciliation
// (support applies its finding).

// SyncRefunds looks a settled payment up at the gateway and books every refund there that the books do
// not have yet. It returns how many it booked. Idempotent: a refund is booked once, matched by the
// gateway's refund id or, for ours, by the idempotency key the adapters echo back.
func (s *Service) SyncRefunds(ctx context.Context, attemptID string) (int, error) {
	att, err := s.q(s.pool).GetAttempt(ctx, attemptID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if att.Status != string(statemachine.AttemptSucceeded) && att.Status != string(statemachine.AttemptReversed) {
		return 0, nil
	}
	gw, ok := s.gateways.Get(att.Gateway)
	if !ok {
		return 0, fmt.Errorf("gateway %s is not enabled", att.Gateway)
	}
	out, err := gw.Lookup(ctx, att.OrderID)
	if err != nil {
		return 0, fmt.Errorf("look up %s: %w", att.OrderID, err)
	}
	if out.Kind != gateway.Succeeded && out.Kind != gateway.Canceled {
		return 0, nil
	}
	var n int
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		lc, err := s.lockForOutcome(ctx, tx, attemptID)
		if err != nil {
			return err
		}
		n, err = s.applyGatewayRefunds(ctx, tx, lc, out, s.clock.Now())
		return err
	})
	return n, err
}

// applyGatewayRefunds books, in the caller's transaction (which holds the charge's locks and has booked
// the payment), the refunds the gateway reports for the attempt.
func (s *Service) applyGatewayRefunds(ctx context.Context, tx pgx.Tx, lc lockedCharge, out gateway.Outcome, now time.Time) (int, error) {
	if !out.Refunded.IsPositive() && len(out.Refunds) == 0 {
		return 0, nil
	}
	att, err := s.q(tx).LockAttempt(ctx, lc.att.ID)
	if err != nil {
		return 0, err
	}
	ours, err := s.q(tx).RefundsForAttempt(ctx, att.ID)
	if err != nil {
		return 0, err
	}
	byKey, byGatewayID := map[string]store.Refund{}, map[string]bool{}
	for _, r := range ours {
		byKey[r.IdempotencyKey] = r
		if r.GatewayRefundID != nil {
			byGatewayID[*r.GatewayRefundID] = true
		}
	}
	booked := 0
	if out.Refunds != nil {
		for _, g := range out.Refunds {
			if g.ID != "" && byGatewayID[g.ID] {
				continue
			}
			if r, ok := byKey[g.Reference]; ok && g.Reference != "" {
				if r.Status == RefundPending || r.Status == RefundUnknown {
					// Ours, and the gateway says it happened: settle it here.
					locked, err := s.q(tx).LockRefund(ctx, r.ID)
					if err != nil {
						return booked, err
					}
					if err := s.refundSucceeded(ctx, tx, lockedRefund{lockedCharge: lc, ref: locked}, g.ID, now); err != nil {
						return booked, err
					}
					booked++
				}
				continue
			}
			if err := s.bookGatewayRefund(ctx, tx, lc, att, g.ID, g.Amount, g.Reason, now); err != nil {
				return booked, err
			}
			att.AmountRefunded = att.AmountRefunded.Add(g.Amount)
			booked++
		}
		return booked, nil
	}
	// The gateway reports only the refunded total (Stripe's lookup). What it refunded beyond what the books
	// hold is a refund made there, unless one of ours is still on its way: then wait for it to settle.
	for _, r := range ours {
		if r.Status == RefundPending || r.Status == RefundUnknown {
			return 0, nil
		}
	}
	extra := out.Refunded.Sub(att.AmountRefunded)
	if !extra.IsPositive() {
		return 0, nil
	}
	// One gateway refund per new refunded total: a repeated sync finds the same id and books nothing.
	id := fmt.Sprintf("%s:refunded:%s", deref(att.GatewayPaymentKey), money.String(out.Refunded, att.Currency))
	if err := s.bookGatewayRefund(ctx, tx, lc, att, id, extra, "refunded at the gateway", now); err != nil {
		return 0, err
	}
	return 1, nil
}

// bookGatewayRefund records a refund made at the gateway: a credit note (origin gateway, issued), a
// succeeded refund row carrying the gateway's id, and the money (bookRefund).
func (s *Service) bookGatewayRefund(ctx context.Context, tx pgx.Tx, lc lockedCharge, att store.PaymentAttempt, gatewayID string, amount decimal.Decimal, reason string, now time.Time) error {
	if !amount.IsPositive() {
		return nil
	}
	if left := att.Amount.Sub(att.AmountRefunded); amount.GreaterThan(left) {
		return fmt.Errorf("gateway reports a refund of %s on %s, more than the %s left of the payment", amount, att.OrderID, left)
	}
	if reason == "" {
		reason = "refunded at the gateway"
	}
	inv, err := s.q(tx).GetInvoice(ctx, att.InvoiceID)
	if err != nil {
		return err
	}
	cn, err := s.newCreditNote(ctx, tx, inv, CreditNoteRefund, OriginGateway, "gateway:"+att.Gateway, amount, reason, now)
	if err != nil {
		return err
	}
	cn, err = s.q(tx).SetCreditNoteStatus(ctx, store.SetCreditNoteStatusParams{ID: cn.ID, Status: "issued", IssuedAt: &now})
	if err != nil {
		return err
	}
	r, err := s.q(tx).CreateRefund(ctx, store.CreateRefundParams{ID: ids.New("re"), CreditNoteID: cn.ID, InvoiceID: inv.ID,
		AttemptID: att.ID, CustomerID: att.CustomerID, Gateway: att.Gateway, PaymentKey: deref(att.GatewayPaymentKey), Amount: amount,
		Currency: att.Currency, Reason: reason, Status: RefundSucceeded, Origin: OriginGateway,
		IdempotencyKey: "gateway-" + att.Gateway + "-" + gatewayID, GatewayRefundID: &gatewayID, CreatedAt: now, ResolvedAt: &now})
	if err != nil {
		return fmt.Errorf("record gateway refund %s: %w", gatewayID, err)
	}
	s.log.Info("refund made at the gateway booked", "attempt_id", att.ID, "invoice_id", inv.ID, "refund_id", r.ID,
		"gateway_refund_id", gatewayID, "amount", amount.String())
	return s.bookRefund(ctx, tx, lc, r, cn, now)
}
