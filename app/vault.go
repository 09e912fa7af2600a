package app

import (
	"log/slog"

	"github.com/dunningworks/billing/billingkey"
	"github.com/dunningworks/billing/internal/config"
	"github.com/dunningworks/billing/internal/keyring"
)

// KeyRing builds the vault's key ring from BILLING_ENCRYPTION_KEYS. Dev mode without keys gets the fixed,
// public development key (config refuses production mode without keys), with a warning loud enough that
// nobody ships it by accident. billingd and billingctl both call this, so they always agree on the keys.
func KeyRing(cfg config.Config, log *slog.Logger) (*keyring.Ring, error) {
	if len(cfg.EncryptionKeys) == 0 {
		log.Warn("BILLING_ENCRYPTION_KEYS is empty: billing keys are encrypted with the PUBLIC development key; " +
			"anyone with this source code can decrypt them. Set BILLING_ENCRYPTION_KEYS before storing a real card.")
		return keyring.Dev(), nil
	}
	return keyring.New(cfg.EncryptionKeys)
}

// buildVault makes the billing-key vault over the App's pool, clock and gateways.
func (a *App) buildVault() (*billingkey.Vault, error) {
	ring, err := KeyRing(a.Config, a.Log)
	if err != nil {
		return nil, err
	}
	return billingkey.New(billingkey.Config{
		Pool:     a.Pool,
		Clock:    a.Clock,
		Gateways: a.Gateways,
		KeyRing:  ring,
		Log:      a.Log.With("component", "billingkey"),
		// A new key heals: billing retries the customer's open invoices in the key's transaction.
		OnKeyRegistered: a.Billing.KeyRegistered,
		Delinquent:      a.Billing.Delinquent,
	}), nil
}
