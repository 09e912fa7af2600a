package billing

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/internal/store"
)

// GatewayPayment is one charge attempt at a gateway as a reconciliation compares it with the gateway's
// own list: what we asked for and what the ledger says we hold for it.
type GatewayPayment struct {
	AttemptID  string
	OrderID    string
	Amount     decimal.Decimal
	Currency   string
	Status     string // the attempt's: succeeded, reversed, declined, pending, unknown, failed
	PaymentKey *string
	// LedgerHeld is what the ledger holds for the attempt at the gateway's clearing account (the payment
	// minus any reversal): zero for an attempt that never collected.
	LedgerHeld decimal.Decimal
}

// CollectedPayments lists the attempts at gateway gw created in [from, to) that collected money
// (succeeded, or reversed since), oldest first.
func (s *Service) CollectedPayments(ctx context.Context, gw string, from, to time.Time) ([]GatewayPayment, error) {
	rows, err := s.q(s.pool).CollectedPaymentsInWindow(ctx, store.CollectedPaymentsInWindowParams{
		ClearingAccount: ClearingAccount(gw), Gateway: gw, FromAt: from, ToAt: to})
	if err != nil {
		return nil, err
	}
	out := make([]GatewayPayment, 0, len(rows))
	for _, r := range rows {
		out = append(out, GatewayPayment{AttemptID: r.ID, OrderID: r.OrderID, Amount: r.Amount, Currency: r.Currency,
			Status: r.Status, PaymentKey: r.GatewayPaymentKey, LedgerHeld: r.LedgerHeld})
	}
	return out, nil
}

// PaymentsByOrderID finds the attempts at gateway gw with the given order ids, whatever their status or
// age (a resend the next day, a refund of an old payment, an attempt that never collected).
func (s *Service) PaymentsByOrderID(ctx context.Context, gw string, orderIDs []string) ([]GatewayPayment, error) {
	rows, err := s.q(s.pool).GatewayPaymentsByOrderIDs(ctx, store.GatewayPaymentsByOrderIDsParams{
		ClearingAccount: ClearingAccount(gw), Gateway: gw, OrderIds: orderIDs})
	if err != nil {
		return nil, err
	}
	out := make([]GatewayPayment, 0, len(rows))
	for _, r := range rows {
		out = append(out, GatewayPayment{AttemptID: r.ID, OrderID: r.OrderID, Amount: r.Amount, Currency: r.Currency,
			Status: r.Status, PaymentKey: r.GatewayPaymentKey, LedgerHeld: r.LedgerHeld})
	}
	return out, nil
}
