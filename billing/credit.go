package billing

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
)

// ActionAdjustCredit is support's grant or removal of customer credit, as the audit log names it.
const ActionAdjustCredit = "adjust-credit"

// EvtCustomerCreditRemoved is emitted when support takes credit back.
const EvtCustomerCreditRemoved = "customer.credit_removed"

// CreditAdjustment is the input of AdjustCredit: a positive amount grants credit, a negative one removes
// it (never more than the customer holds).
type CreditAdjustment struct {
	Amount   string
	Currency string
	Reason   string
}

// CreditAdjusted is what AdjustCredit did.
type CreditAdjusted struct {
	ID         string    `json:"id"`
	CustomerID string    `json:"customer_id"`
	Amount     string    `json:"amount"`
	Currency   string    `json:"currency"`
	Reason     string    `json:"reason"`
	Balance    AmountDue `json:"balance"`
	Customer   Customer  `json:"customer"`
}

// AdjustCredit grants (amount > 0) or removes (amount < 0) credit on a customer's balance, audited with
// its reason. The ledger moves it between credit_granted (what support gave away) and the customer's
// credit account; the customer's next invoices spend it before any card is charged (Compose).
func (s *Service) AdjustCredit(ctx context.Context, a Actor, customerID string, in CreditAdjustment) (CreditAdjusted, error) {
	if err := checkActor(a, in.Reason); err != nil {
		return CreditAdjusted{}, err
	}
	amount, err := money.Parse(in.Amount, in.Currency)
	switch {
	case errors.Is(err, money.ErrUnknownCurrency):
		return CreditAdjusted{}, apperr.Invalid("currency", "must be a supported ISO 4217 code (e.g. KRW, USD)")
	case err != nil:
		return CreditAdjusted{}, apperr.Invalid("amount", "%v", err)
	case amount.IsZero():
		return CreditAdjusted{}, apperr.Invalid("amount", "must not be zero (positive grants, negative removes)")
	}
	if err := s.requireCustomer(ctx, s.pool, customerID); err != nil {
		return CreditAdjusted{}, err
	}
	out := CreditAdjusted{ID: ids.New("cba"), CustomerID: customerID, Amount: money.String(amount, in.Currency), Currency: in.Currency, Reason: in.Reason}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		account := CreditAccount(customerID)
		// The same lock invoices take to spend credit: a removal cannot race a finalization into a
		// negative balance.
		if err := s.q(tx).LockCustomerCredit(ctx, account); err != nil {
			return err
		}
		balance, err := s.q(tx).CreditBalance(ctx, store.CreditBalanceParams{Account: account, Currency: in.Currency})
		if err != nil {
			return err
		}
		held := balance.Neg()
		after := held.Add(amount)
		if after.IsNegative() {
			return &apperr.Error{Kind: apperr.KindValidation, Code: "insufficient_credit",
				Message: "the customer holds " + money.String(held, in.Currency) + " " + in.Currency + " of credit; at most that can be removed",
				Fields:  []apperr.FieldError{{Field: "amount", Message: "removes more than the customer holds"}}}
		}
		if err := s.post(ctx, tx, "credit_adjusted", out.ID, customerID, in.Reason, now,
			Entry{Account: AccountCreditGranted, Currency: in.Currency, Amount: amount},
			Entry{Account: account, Currency: in.Currency, Amount: amount.Neg()}); err != nil {
			return err
		}
		evt := EvtCustomerCreditGranted
		if amount.IsNegative() {
			evt = EvtCustomerCreditRemoved
		}
		if err := s.emit(ctx, tx, evt, Refs{CustomerID: customerID}, now, map[string]any{"amount": out.Amount,
			"currency": in.Currency, "reason": in.Reason, "adjustment_id": out.ID}); err != nil {
			return err
		}
		out.Balance = AmountDue{Amount: money.String(after, in.Currency), Currency: in.Currency}
		return s.writeAudit(ctx, tx, a, ActionAdjustCredit, "customer", customerID, in.Reason,
			map[string]any{"credit": money.String(held, in.Currency), "currency": in.Currency},
			map[string]any{"credit": out.Balance.Amount, "currency": in.Currency, "adjustment": out.Amount, "adjustment_id": out.ID}, now)
	})
	if err != nil {
		return CreditAdjusted{}, err
	}
	out.Customer, err = s.GetCustomer(ctx, customerID)
	return out, err
}
