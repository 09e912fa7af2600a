package app

import (
	"github.com/dunningworks/billing/internal/keyring"
	"github.com/dunningworks/billing/portal"
)

// buildLinks makes the customer-page link signer: under BILLING_PORTAL_KEYS when given, else under keys
// the vault's ring derives for links (keyring.Ring.MAC), so production needs no new secret and rotating
// BILLING_ENCRYPTION_KEYS keeps old links valid while the old version stays in the ring.
func (a *App) buildLinks() (*portal.Signer, error) {
	ring := a.Vault.KeyRing()
	if len(a.Config.PortalKeys) > 0 {
		var err error
		if ring, err = keyring.New(a.Config.PortalKeys); err != nil {
			return nil, err
		}
	}
	return portal.NewSigner(ring, a.Config.PublicURL, a.Config.PortalLinkTTL, a.Clock), nil
}
