package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/dunning"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
)

// The backup card (docs/dunning.md, "The backup card"): when the policy allows it (after a hard decline,
// or after the last soft retry, on the default card), the invoice's next attempt goes to the customer's
// backup card, once. It is an ordinary attempt of the invoice, with the same fences (one in flight per
// invoice, a deterministic order id resent unchanged), plus one of its own: a unique index allows one
// backup attempt per invoice. Its outcome decides nothing about the ladder of the default card: a
// declined backup hands the invoice back to the decision the default card had reached.

// keyForAttempt picks the key the invoice's next attempt charges: the backup card when the dunning
// decision scheduled it, unless a new default card arrived since (a new card is what the customer chose,
// and registering it retries at once); otherwise the default card. The caller holds the invoice's lock.
func (s *Service) keyForAttempt(ctx context.Context, tx pgx.Tx, inv store.Invoice) (KeyRef, bool, error) {
	if !inv.BackupDue {
		key, err := s.vault.ChargeableKey(ctx, tx, inv.CustomerID)
		return key, false, err
	}
	if err := s.q(tx).SetInvoiceBackupDue(ctx, store.SetInvoiceBackupDueParams{ID: inv.ID, BackupDue: false}); err != nil {
		return KeyRef{}, false, err
	}
	def, defErr := s.vault.ChargeableKey(ctx, tx, inv.CustomerID)
	if defErr != nil && !errors.Is(defErr, ErrNoChargeableKey) {
		return KeyRef{}, false, defErr
	}
	if defErr == nil {
		last, err := s.q(tx).LastCardDecline(ctx, inv.ID)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return KeyRef{}, false, err
		}
		if err == nil && (last.BillingKeyID == nil || *last.BillingKeyID != def.ID) {
			return def, false, nil // a new default card since the decline: it goes first
		}
	}
	tried, err := s.q(tx).HasBackupAttempt(ctx, inv.ID)
	if err != nil {
		return KeyRef{}, false, err
	}
	if tried {
		// Unreachable by the decision (it checks), kept as the rule: never a second backup charge.
		return KeyRef{}, false, ErrNoChargeableKey
	}
	key, err := s.vault.BackupKey(ctx, tx, inv.CustomerID)
	if err != nil {
		// The backup was revoked or made the default between the decision and now: nothing the policy
		// chose can be charged; the dunning window decides.
		return KeyRef{}, false, err
	}
	return key, true, nil
}

// markBackupAttempt flags a just-created attempt as the invoice's backup charge; the unique index makes a
// second one for the invoice fail the transaction.
func (s *Service) markBackupAttempt(ctx context.Context, tx pgx.Tx, att *store.PaymentAttempt) error {
	if err := s.q(tx).MarkBackupAttempt(ctx, att.ID); err != nil {
		return fmt.Errorf("mark backup attempt: %w", err)
	}
	att.Backup = true
	return nil
}

// backupAvailable reports whether the invoice may still go to a backup card: the customer has one that
// can be charged, and it was not tried on this invoice.
func (s *Service) backupAvailable(ctx context.Context, tx pgx.Tx, policy dunning.Policy, inv store.Invoice) (KeyRef, bool, error) {
	if len(policy.BackupCard) == 0 {
		return KeyRef{}, false, nil
	}
	tried, err := s.q(tx).HasBackupAttempt(ctx, inv.ID)
	if err != nil || tried {
		return KeyRef{}, false, err
	}
	key, err := s.vault.BackupKey(ctx, tx, inv.CustomerID)
	if errors.Is(err, ErrNoChargeableKey) {
		return KeyRef{}, false, nil
	}
	if err != nil {
		return KeyRef{}, false, err
	}
	if key.Issuer == "" {
		card, err := s.vault.Card(ctx, tx, key.ID)
		if err != nil {
			return KeyRef{}, false, err
		}
		key.Issuer = card.Brand
	}
	return key, true, nil
}

// scheduleBackup puts the invoice's next attempt on the backup card at the first moment the policy
// allows (outside the customer's quiet hours and the backup issuer's maintenance).
func (s *Service) scheduleBackup(ctx context.Context, tx pgx.Tx, p *store.UpdateInvoiceParams, policy dunning.Policy, loc *time.Location, key KeyRef, now time.Time) error {
	at := policy.AllowedAt(now, loc, key.Issuer)
	p.NextAttemptAt = &at
	if err := s.q(tx).SetInvoiceBackupDue(ctx, store.SetInvoiceBackupDueParams{ID: p.ID, BackupDue: true}); err != nil {
		return err
	}
	return s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkCollect, ID: p.ID, At: at})
}

// afterBackupDecline hands a declined invoice back to where the default card's dunning stood: the policy
// decides again from the default card's last decline, now without a backup to try (exhausted: the final
// action; a hard decline: wait for a new card within the dunning window).
func (s *Service) afterBackupDecline(ctx context.Context, tx pgx.Tx, lc lockedCharge, ap applied, now time.Time) error {
	inv, err := s.q(tx).GetInvoice(ctx, lc.inv.ID)
	if err != nil {
		return err
	}
	last, err := s.q(tx).LastCardDecline(ctx, inv.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return s.afterFailure(ctx, tx, lc.sub, inv, ap, failure{hard: true, code: codeNoKey}, now)
	}
	if err != nil {
		return err
	}
	declines, err := s.q(tx).CountDeclines(ctx, inv.ID)
	if err != nil {
		return err
	}
	var cardAttempts int32
	if last.BillingKeyID != nil {
		if cardAttempts, err = s.q(tx).CountCardAttempts(ctx, store.CountCardAttemptsParams{BillingKeyID: last.BillingKeyID, Since: now.Add(-ap.policy.CardWindow.D())}); err != nil {
			return err
		}
	}
	return s.afterFailure(ctx, tx, lc.sub, inv, ap, failure{hard: deref(last.DeclineClass) == "hard", declines: int(declines),
		cardAttempts: int(cardAttempts), code: deref(last.DeclineCode), keyID: last.BillingKeyID}, now)
}

// emitBackupCharged tells the customer's channels which card paid: the backup, not the default they
// know about.
func (s *Service) emitBackupCharged(ctx context.Context, tx pgx.Tx, att store.PaymentAttempt, subscriptionID string, now time.Time) error {
	var card struct{ Brand, MaskedNumber string }
	if att.BillingKeyID != nil {
		c, err := s.vault.Card(ctx, tx, *att.BillingKeyID)
		if err != nil {
			return err
		}
		card.Brand, card.MaskedNumber = c.Brand, c.MaskedNumber
	}
	refs := Refs{CustomerID: att.CustomerID, SubscriptionID: subscriptionID, InvoiceID: att.InvoiceID, AttemptID: att.ID}
	return s.emit(ctx, tx, EvtPaymentBackupCardCharged, refs, now, map[string]any{
		"billing_key_id": deref(att.BillingKeyID), "card": map[string]string{"brand": card.Brand, "masked_number": card.MaskedNumber},
		"amount": money.String(att.Amount, att.Currency), "currency": att.Currency, "order_id": att.OrderID,
	})
}

// customerZone is the customer's time zone, or the policy's when they have none (or an unreadable one).
func (s *Service) customerZone(ctx context.Context, tx pgx.Tx, customerID string, policy dunning.Policy) (*time.Location, error) {
	tz, err := s.q(tx).CustomerTimeZone(ctx, customerID)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	if tz != nil {
		if loc, err := dunning.LoadZone(*tz); err == nil {
			return loc, nil
		}
	}
	return policy.TimeZone.Location(), nil
}
