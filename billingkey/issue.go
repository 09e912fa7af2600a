package billingkey

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/idem"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/store"
)

// Issue exchanges an auth key from the gateway's card-registration flow for a billing key and stores it
// for the customer. The customer's first key (or any new key while they have no chargeable default: the
// default was revoked or hard-declined) becomes the default, so a new card heals dunning without a second
// call. OnKeyRegistered runs in the same transaction. A key that would become the default must be able to
// charge the currencies of the customer's live subscriptions: otherwise 422 currency_not_supported, before
// the gateway is called.
//
// The gateway is called outside any transaction: a slow gateway must not hold a customer lock or a
// connection. If storing fails after the gateway issued the key, the caller may retry with the same auth
// key; adapters derive their idempotency key from (customerKey, authKey) and get the same key back.
//
// req, when set, is the request's Idempotency-Key. It is stored with the key, and a retry of the request
// is answered with that key instead of storing the card twice (the same key with another body: 422): the
// request is safe to run again after a crash between storing and answering.
func (v *Vault) Issue(ctx context.Context, customerID, gatewayName, authKey, customerKey string, req idem.Request) (Key, error) {
	gatewayName, customerKey = strings.TrimSpace(gatewayName), strings.TrimSpace(customerKey)
	var val apperr.Validation
	var gw gateway.Gateway
	switch {
	case gatewayName == "":
		val.Add("gateway", "is required")
	default:
		var ok bool
		if v.gateways != nil {
			gw, ok = v.gateways.Get(gatewayName)
		}
		if !ok {
			val.Add("gateway", "%q is not an enabled gateway", gatewayName)
		}
	}
	if authKey == "" || utf8.RuneCountInString(authKey) > 1024 || hasControl(authKey) || !utf8.ValidString(authKey) {
		val.Add("auth_key", "is required (at most 1024 printable characters)")
	}
	if customerKey == "" || utf8.RuneCountInString(customerKey) > 300 || hasControl(customerKey) || !utf8.ValidString(customerKey) {
		val.Add("customer_key", "is required (at most 300 printable characters)")
	}
	if err := val.Err(); err != nil {
		return Key{}, err
	}
	if k, ok, err := v.issuedBefore(ctx, req); err != nil || ok {
		return k, err
	}
	if err := v.requireCustomer(ctx, customerID); err != nil {
		return Key{}, err
	}
	// A key that will become the default must be able to pay the customer's subscriptions. Refused before
	// the gateway call, so the auth key is not spent and nothing is left issued at the gateway.
	err := v.inTx(ctx, func(tx pgx.Tx) error {
		def, err := v.takesDefault(ctx, tx, customerID)
		if err != nil || !def {
			return err
		}
		return v.takesLiveCurrencies(ctx, tx, gatewayName, customerID, "gateway")
	})
	if err != nil {
		return Key{}, err
	}

	gctx, cancel := context.WithTimeout(ctx, v.issueTimeout)
	issued, err := gw.IssueBillingKey(gctx, customerKey, authKey)
	cancel()
	if err != nil {
		return Key{}, v.issueError(ctx, gatewayName, customerID, err)
	}
	if issued.Token.IsZero() {
		return Key{}, &apperr.Error{Kind: apperr.KindGateway, Code: "gateway_unavailable",
			Message: "the gateway answered without a billing key; nothing was stored"}
	}

	var row store.BillingKey
	err = v.inTx(ctx, func(tx pgx.Tx) error {
		if err := v.lockCustomer(ctx, tx, customerID); err != nil {
			return err
		}
		makeDefault, err := v.takesDefault(ctx, tx, customerID)
		if err != nil {
			return err
		}
		if makeDefault {
			err := v.takesLiveCurrencies(ctx, tx, gatewayName, customerID, "gateway")
			switch {
			case apperr.IsKind(err, apperr.KindValidation):
				// A subscription in a currency this gateway does not take started since the check above: the
				// card is kept (the gateway issued it), but not as the key that pays.
				makeDefault = false
			case err != nil:
				return err
			default:
				if err := v.q(tx).ClearDefault(ctx, customerID); err != nil {
					return fmt.Errorf("clear default key: %w", err)
				}
			}
		}
		id := ids.New("bk")
		ct, version, err := v.ring.Seal([]byte(issued.Token.Reveal()), binding(id, customerID)...)
		if err != nil {
			return err
		}
		row, err = v.q(tx).InsertKey(ctx, store.InsertKeyParams{
			ID: id, CustomerID: customerID, Gateway: gatewayName, CustomerKey: customerKey,
			Ciphertext: ct, KeyVersion: int32(version), CardBrand: issued.Card.Brand,
			MaskedNumber: issued.Card.MaskedNumber, IsDefault: makeDefault, CreatedAt: v.clock.Now(),
		})
		if err != nil {
			return fmt.Errorf("store billing key: %w", err)
		}
		if req.Set() {
			n, err := v.q(tx).RecordKeyIssue(ctx, store.RecordKeyIssueParams{IdemKey: req.Identity, RequestHash: req.Hash,
				BillingKeyID: id, RetentionHours: idem.RetentionHours})
			if err != nil {
				return fmt.Errorf("record billing key issue: %w", err)
			}
			if n == 0 {
				return errIssuedMeanwhile
			}
		}
		return v.registered(ctx, tx, customerID)
	})
	if errors.Is(err, errIssuedMeanwhile) || dbx.IsUniqueViolation(err, "billing_key_issues_pkey") {
		// The same request ran concurrently and stored the key first: answer with that one.
		k, ok, err := v.issuedBefore(ctx, req)
		if err == nil && !ok {
			err = fmt.Errorf("billing key issue: %w, and its record is gone", errIssuedMeanwhile)
		}
		return k, err
	}
	if err != nil {
		return Key{}, err
	}
	v.log.InfoContext(ctx, "billing key registered", "customer_id", customerID, "billing_key_id", row.ID,
		"gateway", gatewayName, "is_default", row.IsDefault)
	return keyView(row), nil
}

// errIssuedMeanwhile: the request's key was recorded by another run while this one was storing.
var errIssuedMeanwhile = errors.New("the idempotency key was recorded by a concurrent run")

// issuedBefore returns the key a request with this Idempotency-Key stored (ok=false when none did within
// the retention); the same key with another body is 422.
func (v *Vault) issuedBefore(ctx context.Context, req idem.Request) (Key, bool, error) {
	if !req.Set() {
		return Key{}, false, nil
	}
	row, err := v.q(v.pool).KeyByIssue(ctx, store.KeyByIssueParams{IdemKey: req.Identity, RetentionHours: idem.RetentionHours})
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, false, nil
	}
	if err != nil {
		return Key{}, false, err
	}
	if err := req.Check(row.RequestHash); err != nil {
		return Key{}, true, err
	}
	k, err := v.q(v.pool).KeyByID(ctx, row.BillingKeyID)
	if err != nil {
		return Key{}, true, err
	}
	return keyView(k), true, nil
}

// takesDefault reports whether a new key becomes the default: when the customer has none, the current
// one is hard-declined (it can never be charged again, so leaving it default would block the heal), or the
// customer is delinquent (a failed invoice is open). It changes nothing: the caller clears the current
// default when it stores the new one, holding the customer lock.
func (v *Vault) takesDefault(ctx context.Context, tx pgx.Tx, customerID string) (bool, error) {
	cur, err := v.q(tx).DefaultKey(ctx, customerID)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("load default key: %w", err)
	}
	if cur.HardDeclinedAt == nil {
		// A customer in dunning who registers a card means to pay with it: retrying the card that just
		// failed would not heal anything.
		if v.delinquent == nil {
			return false, nil
		}
		late, err := v.delinquent(ctx, tx, customerID)
		if err != nil || !late {
			return false, err
		}
	}
	return true, nil
}

// issueError turns a gateway failure into what the client can act on. A declined card is 402 with the
// gateway's code (another card is needed); a refused auth key or request is 422 with the gateway's code and
// message (a new auth key is needed: retrying this one can never succeed). Only what is ours or the
// gateway's is 502/503: timeouts, 5xx, an open circuit, and our credentials refused. Never a 500.
func (v *Vault) issueError(ctx context.Context, gatewayName, customerID string, err error) error {
	var decline *gateway.DeclineError
	var merchant *gateway.MerchantError
	switch {
	case errors.As(err, &decline) && decline.Card:
		class := decline.Class
		if class == "" {
			class = gateway.Hard
		}
		return &apperr.Error{Kind: apperr.KindDeclined, Code: "card_declined",
			Message: "the gateway declined the card (" + decline.Code + "): " + decline.Message + "; nothing was stored, register another card",
			Extra:   map[string]any{"decline_code": decline.Code, "decline_class": class, "gateway_code": decline.Code, "gateway_message": decline.Message},
			Err:     err}
	case errors.As(err, &decline):
		field := "auth_key"
		if decline.Code == "NOT_MATCHES_CUSTOMER_KEY" {
			field = "customer_key"
		}
		return &apperr.Error{Kind: apperr.KindValidation, Code: "auth_key_rejected",
			Message: "the gateway refused to issue a billing key for this auth key (" + decline.Code + "): " + decline.Message +
				"; nothing was stored, start the card registration again for a new auth key",
			Fields: []apperr.FieldError{{Field: field, Message: "refused by the gateway (" + decline.Code + ")"}},
			Extra:  map[string]any{"gateway_code": decline.Code, "gateway_message": decline.Message}, Err: err}
	case errors.Is(err, gateway.ErrAuthKeyRejected):
		return &apperr.Error{Kind: apperr.KindValidation, Code: "auth_key_rejected",
			Message: "the gateway refused to issue a billing key for this auth key",
			Fields:  []apperr.FieldError{{Field: "auth_key", Message: "refused by the gateway"}}, Err: err}
	case errors.As(err, &merchant):
		v.log.ErrorContext(ctx, "the gateway refused our credentials or configuration at billing key issuance", "gateway", gatewayName,
			"customer_id", customerID, "gateway_code", merchant.Code, "status", merchant.Status, "err", err)
		return &apperr.Error{Kind: apperr.KindGateway, Code: "gateway_misconfigured",
			Message: "the gateway refused the service's own credentials or configuration (" + merchant.Code + "); nothing was stored. " +
				"This is not the card's fault and an operator has been alerted; retry later with the same auth key", Err: err}
	case ctx.Err() != nil:
		// The client went away; there is nobody to answer.
		return ctx.Err()
	case errors.Is(err, gateway.ErrTryLater):
		e := &apperr.Error{Kind: apperr.KindUnavailable, Code: "gateway_unavailable",
			Message: "the gateway is not taking requests right now; nothing was stored, try again later", Err: err}
		var tl *gateway.TryLaterError
		if errors.As(err, &tl) && tl.RetryAfter > 0 {
			e.Extra = map[string]any{"retry_after_seconds": int(tl.RetryAfter.Seconds() + 0.999)}
		}
		return e
	default:
		v.log.WarnContext(ctx, "billing key issuance failed at the gateway", "gateway", gatewayName,
			"customer_id", customerID, "err", err)
		return &apperr.Error{Kind: apperr.KindGateway, Code: "gateway_unavailable",
			Message: "the gateway did not issue the billing key; nothing was stored, retry with the same auth key", Err: err}
	}
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}
