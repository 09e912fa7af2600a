package billing

import (
	"context"
	"fmt"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/store"
)

// A charge in a currency the key's gateway does not take can never succeed (a USD plan on a Toss key):
// the adapter refuses it without sending (gateway.CurrencyRefused) and collection stops resending, but
// the invoice stays open. So the combination is refused where it is made, with 422
// currency_not_supported: subscribing with such a default key, changing to such a plan, and making such
// a key the default (billingkey asks TakesLiveCurrencies). A gateway that is not enabled is not judged
// here: its keys fail at the charge for that reason, not this one.

// LiveCurrency is a currency a customer's live (not ended) subscriptions are billed in, with one of them.
type LiveCurrency struct {
	Currency       string
	SubscriptionID string
}

// LiveCurrencies lists the currencies of the customer's live subscriptions (everything but canceled and
// incomplete_expired, so paused and trialing ones count: they will be charged).
func LiveCurrencies(ctx context.Context, db dbx.DBTX, customerID string) ([]LiveCurrency, error) {
	rows, err := store.New(db).LiveSubscriptionCurrencies(ctx, customerID)
	if err != nil {
		return nil, fmt.Errorf("currencies of customer %s's subscriptions: %w", customerID, err)
	}
	out := make([]LiveCurrency, len(rows))
	for i, r := range rows {
		out[i] = LiveCurrency{Currency: r.Currency, SubscriptionID: r.SubscriptionID}
	}
	return out, nil
}

// TakesLiveCurrencies refuses (422 currency_not_supported, naming field) making a key of gw the one that
// pays the customer's subscriptions when gw does not charge in one of their currencies. The caller holds
// the customer lock, so no subscription in another currency can start meanwhile.
func TakesLiveCurrencies(ctx context.Context, db dbx.DBTX, gw gateway.Gateway, customerID, field string) error {
	live, err := LiveCurrencies(ctx, db, customerID)
	if err != nil {
		return err
	}
	for _, c := range live {
		if !gw.SupportsCurrency(c.Currency) {
			return apperr.CurrencyNotSupported(field, string(gw.Name()), c.Currency, c.SubscriptionID,
				"the %s gateway does not charge in %s, and subscription %s is billed in %s: this key could never pay it",
				gw.Name(), c.Currency, c.SubscriptionID, c.Currency)
		}
	}
	return nil
}

// keyTakesCurrency refuses (422 currency_not_supported, naming field) charging key in currency.
func (s *Service) keyTakesCurrency(key KeyRef, currency, field, format string, args ...any) error {
	if s.gateways == nil {
		return nil
	}
	gw, ok := s.gateways.Get(key.Gateway)
	if !ok || gw.SupportsCurrency(currency) {
		return nil
	}
	return apperr.CurrencyNotSupported(field, key.Gateway, currency, "", format, args...)
}
