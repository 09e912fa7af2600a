package billingkey

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/store"
)

// List returns a customer's keys, revoked ones included, oldest first.
func (v *Vault) List(ctx context.Context, customerID string, p page.Request) (page.List[Key], error) {
	if err := v.requireCustomer(ctx, customerID); err != nil {
		return page.List[Key]{}, err
	}
	rows, err := v.q(v.pool).ListKeys(ctx, store.ListKeysParams{CustomerID: customerID, HasCursor: p.HasCursor(),
		AfterTime: p.AfterTime, AfterID: p.AfterID, Lim: int32(p.Limit + 1)})
	if err != nil {
		return page.List[Key]{}, fmt.Errorf("list billing keys of %s: %w", customerID, err)
	}
	keys := make([]Key, len(rows))
	for i, r := range rows {
		keys[i] = keyView(r)
	}
	return page.Build(keys, p.Limit, func(k Key) (time.Time, string) { return k.CreatedAt, k.ID }), nil
}

// Get returns one of the customer's keys.
func (v *Vault) Get(ctx context.Context, customerID, keyID string) (Key, error) {
	row, err := v.q(v.pool).CustomerKey(ctx, store.CustomerKeyParams{ID: keyID, CustomerID: customerID})
	if errors.Is(err, pgx.ErrNoRows) {
		if err := v.requireCustomer(ctx, customerID); err != nil {
			return Key{}, err
		}
		return Key{}, apperr.NotFound("billing_key", keyID)
	}
	if err != nil {
		return Key{}, fmt.Errorf("load billing key %s: %w", keyID, err)
	}
	return keyView(row), nil
}

// MakeDefault makes an active key the customer's default and runs the heal hook, because a new default
// is a new chance to collect. A revoked or hard-declined key cannot become default (409), nor a key whose
// gateway does not charge in the currency of one of the customer's live subscriptions (422
// currency_not_supported). Making the current default default again changes nothing and runs no hook.
func (v *Vault) MakeDefault(ctx context.Context, customerID, keyID string) (Key, error) {
	var out store.BillingKey
	changed := false
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
			e := apperr.Conflict("billing_key_revoked", "billing key %s is %s; only an active key can become the default", keyID, row.Status)
			e.Extra = map[string]any{"state": row.Status, "allowed": []string{}}
			return e
		case row.HardDeclinedAt != nil:
			e := apperr.Conflict("billing_key_hard_declined", "billing key %s was hard-declined; register a new key instead", keyID)
			e.Extra = map[string]any{"state": "hard_declined", "allowed": []string{"revoke"}}
			return e
		case row.IsDefault:
			out = row
			return nil
		}
		if err := v.takesLiveCurrencies(ctx, tx, row.Gateway, customerID, "key_id"); err != nil {
			return err
		}
		if err := v.q(tx).ClearDefault(ctx, customerID); err != nil {
			return fmt.Errorf("clear default key: %w", err)
		}
		if out, err = v.q(tx).SetDefault(ctx, keyID); err != nil {
			return fmt.Errorf("set default key: %w", err)
		}
		changed = true
		return v.registered(ctx, tx, customerID)
	})
	if err != nil {
		return Key{}, err
	}
	if changed {
		v.log.InfoContext(ctx, "default billing key changed", "customer_id", customerID, "billing_key_id", keyID)
	}
	return keyView(out), nil
}

// Revoke soft-deletes a key: it is never charged again and stays listed as revoked. Revoking the default
// leaves the customer with no default on purpose: silently promoting another card would charge a card the
// merchant did not choose; the next registered key becomes the default. Revoking a revoked key is a no-op.
// The same transaction enqueues the key's deletion at the gateway (DeleteAtGateway, see delete.go).
func (v *Vault) Revoke(ctx context.Context, customerID, keyID string) (Key, error) {
	var out store.BillingKey
	err := v.inTx(ctx, func(tx pgx.Tx) error {
		if err := v.lockCustomer(ctx, tx, customerID); err != nil {
			return err
		}
		row, err := v.customerKeyForUpdate(ctx, tx, customerID, keyID)
		if err != nil {
			return err
		}
		if row.Status == StatusRevoked {
			out = row
			return nil
		}
		now := v.clock.Now()
		if out, err = v.q(tx).RevokeKey(ctx, store.RevokeKeyParams{ID: keyID, RevokedAt: &now}); err != nil {
			return fmt.Errorf("revoke billing key %s: %w", keyID, err)
		}
		v.log.InfoContext(ctx, "billing key revoked", "customer_id", customerID, "billing_key_id", keyID, "was_default", row.IsDefault)
		if v.deletions == nil {
			return nil
		}
		// In the revoking transaction: the deletion at the gateway is owed from the moment the revocation
		// commits, and a crash right after the commit cannot lose it.
		if err := v.deletions.EnqueueGatewayDeleteTx(ctx, tx, keyID); err != nil {
			return fmt.Errorf("enqueue the gateway deletion of billing key %s: %w", keyID, err)
		}
		return nil
	})
	if err != nil {
		return Key{}, err
	}
	return keyView(out), nil
}
