package billing

import (
	"context"
	"errors"
	"time"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/dbx"
)

// KeyToken is a decrypted billing key, for one charge, and the customer key it was issued for.
type KeyToken struct {
	Token       gateway.BillingKeyToken
	CustomerKey string
}

// KeyRef names a billing key and the gateway that issued it.
type KeyRef struct {
	ID          string
	Gateway     string
	CustomerKey string // the customer's key at the gateway
	Issuer      string // the card's issuer (brand), for issuers' maintenance windows; may be empty
}

// ErrNoChargeableKey means the customer has no default, active billing key that may be charged (none
// registered, all revoked, or the default was hard-declined and no new key has arrived).
var ErrNoChargeableKey = errors.New("no chargeable billing key")

// KeyVault is what billing needs from the billing-key vault (package billingkey implements it). Billing
// never reads the billing_keys table itself.
type KeyVault interface {
	// ChargeableKey returns the customer's default active key unless it was hard-declined.
	ChargeableKey(ctx context.Context, db dbx.DBTX, customerID string) (KeyRef, error)
	// Token decrypts a key's token, for a charge only, and returns the customer key it was issued for
	// (the gateway refuses a charge with another one).
	Token(ctx context.Context, db dbx.DBTX, keyID string) (token gateway.BillingKeyToken, customerKey string, err error)
	// ChargeableKeys is ChargeableKey for many customers in one query (batch renewals); a customer
	// without a chargeable key is absent from the map.
	ChargeableKeys(ctx context.Context, db dbx.DBTX, customerIDs []string) (map[string]KeyRef, error)
	// Tokens is Token for many keys in one query; a key that cannot be charged (revoked, gone, not
	// decrypting) is absent from the map and its error is in errs.
	Tokens(ctx context.Context, db dbx.DBTX, keyIDs []string) (tokens map[string]KeyToken, errs map[string]error, err error)
	// MarkHardDeclined stops charges on the key until the customer registers a new one.
	MarkHardDeclined(ctx context.Context, db dbx.DBTX, keyID, code string, at time.Time) error
	// BackupKey returns the customer's backup card if it may be charged, else ErrNoChargeableKey.
	BackupKey(ctx context.Context, db dbx.DBTX, customerID string) (KeyRef, error)
	// Card is a key's display data (issuer brand, masked number); empty when unknown.
	Card(ctx context.Context, db dbx.DBTX, keyID string) (gateway.Card, error)
}
