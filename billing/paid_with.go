package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/money"
	"github.com/dunningworks/billing/statemachine"
)

// CardPayment is the card charge that paid an invoice, as a receipt names it (the receipt email, the
// receipt PDF): which card, and whether it was the customer's backup card because the default one could
// not be charged.
type CardPayment struct {
	AttemptID    string
	Gateway      string
	OrderID      string
	BillingKeyID string
	// Card is the card charged (empty when its key is gone).
	Card     gateway.Card
	Amount   string
	Currency string
	// PaidAt is when the gateway's approval was recorded.
	PaidAt time.Time
	// Backup: the customer's backup card paid (docs/dunning.md, "The backup card").
	Backup bool
	// Declined is, for a backup payment, the default card's decline that sent the invoice to the backup;
	// nil when none was declined (there was no default card that could be charged at all).
	Declined *CardDecline
}

// CardDecline is a declined charge of a card.
type CardDecline struct {
	Card  gateway.Card
	Code  string
	Class string
}

// InvoicePayment reads the card charge that paid the invoice; ok is false when no card paid it (it is not
// paid, or credit, a credit note or an offline payment settled it). The paying charge is the last one
// that succeeded by the time the invoice was paid: a success recorded later (a duplicate charge) went to
// the customer's credit, not to this invoice.
func (s *Service) InvoicePayment(ctx context.Context, invoiceID string) (p CardPayment, ok bool, err error) {
	inv, err := s.q(s.pool).GetInvoice(ctx, invoiceID)
	if errors.Is(err, pgx.ErrNoRows) {
		return CardPayment{}, false, apperr.NotFound("invoice", invoiceID)
	}
	if err != nil {
		return CardPayment{}, false, err
	}
	if inv.Status != string(statemachine.InvoicePaid) || inv.PaidAt == nil {
		return CardPayment{}, false, nil
	}
	atts, err := s.q(s.pool).InvoiceAttempts(ctx, invoiceID)
	if err != nil {
		return CardPayment{}, false, fmt.Errorf("attempts of invoice %s: %w", invoiceID, err)
	}
	paying := -1
	for i, a := range atts {
		if a.Status == string(statemachine.AttemptSucceeded) && a.ResolvedAt != nil && !a.ResolvedAt.After(*inv.PaidAt) {
			paying = i
		}
	}
	if paying < 0 {
		return CardPayment{}, false, nil
	}
	a := atts[paying]
	p = CardPayment{AttemptID: a.ID, Gateway: a.Gateway, OrderID: a.OrderID, BillingKeyID: deref(a.BillingKeyID),
		Amount: money.String(a.Amount, a.Currency), Currency: a.Currency, PaidAt: *a.ResolvedAt, Backup: a.Backup}
	if a.BillingKeyID != nil {
		if p.Card, err = s.vault.Card(ctx, s.pool, *a.BillingKeyID); err != nil {
			return CardPayment{}, false, fmt.Errorf("card of attempt %s: %w", a.ID, err)
		}
	}
	if !a.Backup {
		return p, true, nil
	}
	// The backup is tried only after the default card's decline (or when there is no default card to
	// charge): the last decline of a default card before it is the one the customer is told about.
	for i := paying - 1; i >= 0; i-- {
		d := atts[i]
		if d.Status != string(statemachine.AttemptDeclined) || d.Backup {
			continue
		}
		dec := &CardDecline{Code: deref(d.DeclineCode), Class: deref(d.DeclineClass)}
		if d.BillingKeyID != nil {
			if dec.Card, err = s.vault.Card(ctx, s.pool, *d.BillingKeyID); err != nil {
				return CardPayment{}, false, fmt.Errorf("card of attempt %s: %w", d.ID, err)
			}
		}
		p.Declined = dec
		break
	}
	return p, true, nil
}

// BackupCharge is the backup card an open invoice goes to next, and when.
type BackupCharge struct {
	Card gateway.Card
	At   time.Time
}

// UpcomingBackup reads whether the open invoice's next attempt is on the customer's backup card (dunning
// sent it there after the default card's decline: docs/dunning.md, "The backup card"); ok is false when
// it is not, or no longer (paid, or the backup was tried).
func (s *Service) UpcomingBackup(ctx context.Context, invoiceID string) (b BackupCharge, ok bool, err error) {
	inv, err := s.q(s.pool).GetInvoice(ctx, invoiceID)
	if errors.Is(err, pgx.ErrNoRows) {
		return BackupCharge{}, false, apperr.NotFound("invoice", invoiceID)
	}
	if err != nil {
		return BackupCharge{}, false, err
	}
	if inv.Status != string(statemachine.InvoiceOpen) || !inv.BackupDue || inv.NextAttemptAt == nil {
		return BackupCharge{}, false, nil
	}
	key, err := s.vault.BackupKey(ctx, s.pool, inv.CustomerID)
	if errors.Is(err, ErrNoChargeableKey) {
		return BackupCharge{}, false, nil
	}
	if err != nil {
		return BackupCharge{}, false, err
	}
	card, err := s.vault.Card(ctx, s.pool, key.ID)
	if err != nil {
		return BackupCharge{}, false, fmt.Errorf("backup card of %s: %w", inv.CustomerID, err)
	}
	return BackupCharge{Card: card, At: *inv.NextAttemptAt}, true, nil
}
