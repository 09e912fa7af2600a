package app

import (
	"github.com/dunningworks/billing/api"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/internal/keyring"
	"github.com/dunningworks/billing/portal"
	"github.com/dunningworks/billing/portal/web"
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

// registrations are the gateways whose own card-registration flow the customer page can start ("change
// card"), in BILLING_GATEWAYS order: sim through pgsim's SDK stand-in and registration page (so the loop
// runs locally), toss through Toss's v1 SDK with TOSS_CLIENT_KEY. Stripe's Checkout setup mode is not
// wired (docs/customer-page.md).
func (a *App) registrations() []web.Registration {
	var out []web.Registration
	for _, name := range a.Config.Gateways {
		switch name {
		case "sim":
			out = append(out, web.Registration{Gateway: name, ClientKey: pgsim.DefaultClientKey, SDK: a.SimURL + "/js/v1/payment"})
		case "toss":
			if a.Config.TossClientKey == "" {
				a.Log.Warn("TOSS_CLIENT_KEY is empty: the customer page cannot start Toss's card registration (change card)")
				continue
			}
			out = append(out, web.Registration{Gateway: name, ClientKey: a.Config.TossClientKey, SDK: "https://js.tosspayments.com/v1/payment",
				Origins: []string{"https://*.tosspayments.com", "https://*.toss.im"}})
		}
	}
	return out
}

// portalPage builds the customer page (GET /c/{token}) over the App's parts.
func (a *App) portalPage() *web.Handler {
	d := web.Deps{Links: a.Links, Billing: a.Billing, Receipts: a.Receipts, Merchant: a.Config.MerchantName,
		Log: a.Log.With("component", "portal"), RequestID: api.RequestIDFrom, Vault: a.Vault, Registrations: a.registrations(),
		Clock: a.Clock}
	if a.Mail != nil {
		// An expired link's page offers a fresh one by email only when emails are on.
		d.Mailer = a.Mail
	}
	return web.New(d)
}
