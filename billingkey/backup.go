package billingkey

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/store"
)

// BackupKey returns the customer's backup card if it may be charged (active, not the default, never
// hard-declined); otherwise billing.ErrNoChargeableKey. Billing charges it once per invoice, when the
// dunning policy allows.
func (v *Vault) BackupKey(ctx context.Context, db dbx.DBTX, customerID string) (billing.KeyRef, error) {
	row, err := v.q(db).BackupKey(ctx, customerID)
	if errors.Is(err, pgx.ErrNoRows) {
		return billing.KeyRef{}, billing.ErrNoChargeableKey
	}
	if err != nil {
		return billing.KeyRef{}, fmt.Errorf("backup key of customer %s: %w", customerID, err)
	}
	return billing.KeyRef{ID: row.ID, Gateway: row.Gateway, CustomerKey: row.CustomerKey, Issuer: row.CardBrand}, nil
}

// Card is a key's display data: its issuer (brand), which the issuers' maintenance windows are keyed
// by, and its masked number, which tells a customer which card was charged. An unknown key has none.
func (v *Vault) Card(ctx context.Context, db dbx.DBTX, keyID string) (gateway.Card, error) {
	row, err := v.q(db).KeyCard(ctx, keyID)
	if errors.Is(err, pgx.ErrNoRows) {
		return gateway.Card{}, nil
	}
	return gateway.Card{Brand: row.CardBrand, MaskedNumber: row.MaskedNumber}, err
}

// MakeBackup makes an active key the customer's backup card (replacing any other backup). The default
// key cannot also be the backup: a backup is a second card. Repeating it is a no-op.
func (v *Vault) MakeBackup(ctx context.Context, customerID, keyID string) (Key, error) {
	var out store.BillingKey
	err := v.inTx(ctx, func(tx pgx.Tx) error {
		if err := v.lockCustomer(ctx, tx, customerID); err != nil {
			return err
		}
		row, err := v.customerKeyForUpdate(ctx, tx, customerID, keyID)
		if err != nil {
			return err
		}
		switch {
		case row.Status != StatusActive:
			e := apperr.Conflict("billing_key_revoked", "billing key %s is %s; only an active key can be the backup", keyID, row.Status)
			e.Extra = map[string]any{"state": row.Status, "allowed": []string{}}
			return e
		case row.HardDeclinedAt != nil:
			e := apperr.Conflict("billing_key_hard_declined", "billing key %s was hard-declined; register a new key instead", keyID)
			e.Extra = map[string]any{"state": "hard_declined", "allowed": []string{"revoke"}}
			return e
		case row.IsDefault:
			e := apperr.Conflict("billing_key_is_default", "billing key %s is the default card; the backup must be another card", keyID)
			e.Extra = map[string]any{"state": "default", "allowed": []string{"revoke"}}
			return e
		case row.IsBackup:
			out = row
			return nil
		}
		if err := v.takesLiveCurrencies(ctx, tx, row.Gateway, customerID, "key_id"); err != nil {
			return err
		}
		if err := v.q(tx).ClearBackup(ctx, customerID); err != nil {
			return fmt.Errorf("clear backup key: %w", err)
		}
		if out, err = v.q(tx).SetBackup(ctx, keyID); err != nil {
			return fmt.Errorf("set backup key: %w", err)
		}
		v.log.InfoContext(ctx, "backup billing key set", "customer_id", customerID, "billing_key_id", keyID)
		return nil
	})
	if err != nil {
		return Key{}, err
	}
	return keyView(out), nil
}

// RemoveBackup makes the customer's key no longer the backup; a key that is not the backup is a no-op.
func (v *Vault) RemoveBackup(ctx context.Context, customerID, keyID string) (Key, error) {
	var out store.BillingKey
	err := v.inTx(ctx, func(tx pgx.Tx) error {
		if err := v.lockCustomer(ctx, tx, customerID); err != nil {
			return err
		}
		row, err := v.customerKeyForUpdate(ctx, tx, customerID, keyID)
		if err != nil {
			return err
		}
		out = row
		if !row.IsBackup {
			return nil
		}
		if err := v.q(tx).ClearBackup(ctx, customerID); err != nil {
			return fmt.Errorf("clear backup key: %w", err)
		}
		out.IsBackup = false
		return nil
	})
	if err != nil {
		return Key{}, err
	}
	return keyView(out), nil
}
