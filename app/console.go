package app

import (
	"context"
	"net/http"

	"github.com/dunningworks/billing/api"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/console"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/reconcile"
)

// console builds the support console on the same services the REST API uses; the API mounts it at
// /console and hands it its own token checks.
func (a *App) console(auth api.ConsoleAuth) http.Handler {
	return console.New(console.Deps{Pool: a.Pool, Log: a.Log.With("component", "console"), Billing: a.Billing, Vault: a.Vault,
		Lookup: auth.Lookup, KeyActive: auth.KeyActive, Gateways: a.Config.Gateways, Findings: a.openFindings, ResolveFinding: a.resolveFinding})
}

// resolveFinding is the console's resolve form: reconcile.Service.Resolve, as the REST endpoint calls it.
func (a *App) resolveFinding(ctx context.Context, actor billing.Actor, id, action, reason string) error {
	_, err := a.Reconcile.Resolve(ctx, actor, id, reconcile.Resolution{Action: action, Reason: reason})
	return err
}

// openFindings is the console overview's view of reconciliation: the open findings, oldest first.
func (a *App) openFindings(ctx context.Context, limit int) ([]console.Finding, bool, error) {
	list, err := a.Reconcile.Findings(ctx, reconcile.Filter{Status: reconcile.StatusOpen}, page.Request{Limit: limit})
	if err != nil {
		return nil, false, err
	}
	out := make([]console.Finding, 0, len(list.Data))
	for _, f := range list.Data {
		out = append(out, console.Finding{ID: f.ID, Gateway: f.Gateway, Kind: f.Kind, OrderID: f.OrderID,
			OurAmount: deref(f.OurAmount), TheirAmount: deref(f.TheirAmount), Currency: deref(f.Currency), CreatedAt: f.CreatedAt,
			Actions: f.AllowedActions})
	}
	return out, list.NextCursor != nil, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
