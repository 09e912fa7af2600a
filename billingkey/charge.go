package billingkey

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/store"
)

var _ billing.KeyVault = (*Vault)(nil)

// ChargeableKey returns the customer's default active key unless it was hard-declined; otherwise
// billing.ErrNoChargeableKey.
func (v *Vault) ChargeableKey(ctx context.Context, db dbx.DBTX, customerID string) (billing.KeyRef, error) {
	row, err := v.q(db).ChargeableKey(ctx, customerID)
	if errors.Is(err, pgx.ErrNoRows) {
		return billing.KeyRef{}, billing.ErrNoChargeableKey
	}
	if err != nil {
		return billing.KeyRef{}, fmt.Errorf("chargeable key of customer %s: %w", customerID, err)
	}
	return billing.KeyRef{ID: row.ID, Gateway: row.Gateway, CustomerKey: row.CustomerKey}, nil
}

// Token decrypts a key's token for a charge; it is the only place a token leaves its ciphertext. A revoked
// key is refused (wrapping billing.ErrNoChargeableKey): revocation is the merchant saying "stop charging
// this card", even for a charge that picked the key before it was revoked.
func (v *Vault) Token(ctx context.Context, db dbx.DBTX, keyID string) (gateway.BillingKeyToken, string, error) {
	row, err := v.q(db).KeySecret(ctx, keyID)
	if errors.Is(err, pgx.ErrNoRows) {
		return gateway.BillingKeyToken{}, "", apperr.NotFound("billing_key", keyID)
	}
	if err != nil {
		return gateway.BillingKeyToken{}, "", fmt.Errorf("load billing key %s: %w", keyID, err)
	}
	if row.Status != StatusActive {
		return gateway.BillingKeyToken{}, "", fmt.Errorf("billing key %s is %s: %w", keyID, row.Status, billing.ErrNoChargeableKey)
	}
	pt, err := v.ring.Open(row.Ciphertext, int(row.KeyVersion), binding(row.ID, row.CustomerID)...)
	if err != nil {
		v.log.ErrorContext(ctx, "billing key does not decrypt", "billing_key_id", keyID, "key_version", row.KeyVersion, "err", err)
		return gateway.BillingKeyToken{}, "", fmt.Errorf("decrypt billing key %s: %w", keyID, err)
	}
	v.log.DebugContext(ctx, "billing key decrypted for charge", "billing_key_id", keyID, "customer_id", row.CustomerID)
	return gateway.NewBillingKeyToken(string(pt)), row.CustomerKey, nil
}

// MarkHardDeclined stops charges on the key until the customer registers a new one. The first decline is
// kept; marking an already marked key is a no-op.
func (v *Vault) MarkHardDeclined(ctx context.Context, db dbx.DBTX, keyID, code string, at time.Time) error {
	n, err := v.q(db).MarkHardDeclined(ctx, store.MarkHardDeclinedParams{ID: keyID, Code: &code, At: &at})
	if err != nil {
		return fmt.Errorf("mark billing key %s hard-declined: %w", keyID, err)
	}
	if n == 0 {
		exists, err := v.q(db).KeyExists(ctx, keyID)
		if err != nil {
			return fmt.Errorf("mark billing key %s hard-declined: %w", keyID, err)
		}
		if !exists {
			return apperr.NotFound("billing_key", keyID)
		}
		return nil
	}
	v.log.InfoContext(ctx, "billing key hard-declined; no more charges on it", "billing_key_id", keyID, "decline_code", code)
	return nil
}

// ChargeableKeys is ChargeableKey for many customers in one query.
func (v *Vault) ChargeableKeys(ctx context.Context, db dbx.DBTX, customerIDs []string) (map[string]billing.KeyRef, error) {
	rows, err := v.q(db).ChargeableKeys(ctx, customerIDs)
	if err != nil {
		return nil, fmt.Errorf("chargeable keys of %d customers: %w", len(customerIDs), err)
	}
	out := make(map[string]billing.KeyRef, len(rows))
	for _, r := range rows {
		out[r.CustomerID] = billing.KeyRef{ID: r.ID, Gateway: r.Gateway, CustomerKey: r.CustomerKey}
	}
	return out, nil
}

// Tokens is Token for many keys in one query, with Token's refusals: a key that is gone, revoked or does
// not decrypt is left out, with its error in errs.
func (v *Vault) Tokens(ctx context.Context, db dbx.DBTX, keyIDs []string) (map[string]billing.KeyToken, map[string]error, error) {
	rows, err := v.q(db).KeySecrets(ctx, keyIDs)
	if err != nil {
		return nil, nil, fmt.Errorf("load %d billing keys: %w", len(keyIDs), err)
	}
	out := make(map[string]billing.KeyToken, len(rows))
	errs := map[string]error{}
	for _, row := range rows {
		if row.Status != StatusActive {
			errs[row.ID] = fmt.Errorf("billing key %s is %s: %w", row.ID, row.Status, billing.ErrNoChargeableKey)
			continue
		}
		pt, err := v.ring.Open(row.Ciphertext, int(row.KeyVersion), binding(row.ID, row.CustomerID)...)
		if err != nil {
			v.log.ErrorContext(ctx, "billing key does not decrypt", "billing_key_id", row.ID, "key_version", row.KeyVersion, "err", err)
			errs[row.ID] = fmt.Errorf("decrypt billing key %s: %w", row.ID, err)
			continue
		}
		out[row.ID] = billing.KeyToken{Token: gateway.NewBillingKeyToken(string(pt)), CustomerKey: row.CustomerKey}
	}
	for _, id := range keyIDs {
		if _, ok := out[id]; !ok && errs[id] == nil {
			errs[id] = apperr.NotFound("billing_key", id)
		}
	}
	return out, errs, nil
}
