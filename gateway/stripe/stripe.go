package stripe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	sg "github.com/stripe/stripe-go/v82"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/money"
)

// Name is the gateway name of this adapter.
const Name gateway.Name = "stripe"

// DefaultAPIURL is Stripe's production API.
const DefaultAPIURL = "https://api.stripe.com"

// ErrMalformedBillingKey is returned for a billing key token this adapter did not issue.
var ErrMalformedBillingKey = errors.New("stripe billing key is not customer|payment_method")

// ErrInvalidRequest is returned, without contacting Stripe, for a request missing what Stripe needs.
var ErrInvalidRequest = errors.New("invalid stripe request")

// ErrRequestRejected wraps a Stripe refusal that is neither a decline nor a transient failure (400, 401,
// 403, 404 that is not about the card): Stripe processed nothing, and resending will not help.
var ErrRequestRejected = errors.New("stripe rejected the request")

// Config configures an Adapter.
type Config struct {
	// APIURL is Stripe's base URL; empty means DefaultAPIURL. Tests point it at stripe-mock.
	APIURL string
	// SecretKey is the account's secret API key (sk_...).
	SecretKey string
	// WebhookSecret is the endpoint's signing secret (whsec_...). Without it every webhook is refused.
	WebhookSecret string
	// HTTPClient carries the requests; nil means a client of the adapter's own (never http.DefaultClient).
	HTTPClient *http.Client
	// Timeout bounds each call on top of the caller's ctx; zero means only ctx bounds it.
	Timeout time.Duration
	// Now is the clock for webhook timestamp tolerance; nil means time.Now.
	Now func() time.Time
}

// Adapter is the Stripe gateway. It is safe for concurrent use.
type Adapter struct {
	client        *sg.Client
	api           sg.Backend
	key           string
	webhookSecret string
	timeout       time.Duration
	now           func() time.Time
}

var _ gateway.Gateway = (*Adapter)(nil)

// New builds an Adapter with a client of its own: stripe-go's package-level key and backends are never
// touched, so adapters for several accounts (and parallel tests) do not interfere.
func New(cfg Config) (*Adapter, error) {
	if cfg.SecretKey == "" {
		return nil, fmt.Errorf("%w: secret key is required", ErrInvalidRequest)
	}
	apiURL := cfg.APIURL
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	backendCfg := &sg.BackendConfig{
		HTTPClient: httpClient,
		URL:        sg.String(apiURL),
		// No retries inside stripe-go: its backoff sleeps ignore ctx, and resending with the same
		// idempotency key is the caller's decision (an Unknown outcome), not a hidden loop here.
		MaxNetworkRetries: sg.Int64(0),
		LeveledLogger:     &sg.LeveledLogger{Level: sg.LevelNull},
	}
	backends := sg.NewBackendsWithConfig(backendCfg)
	return &Adapter{
		client:        sg.NewClient(cfg.SecretKey, sg.WithBackends(backends)),
		api:           backends.API,
		key:           cfg.SecretKey,
		webhookSecret: cfg.WebhookSecret,
		timeout:       cfg.Timeout,
		now:           now,
	}, nil
}

// Name returns "stripe".
func (a *Adapter) Name() gateway.Name { return Name }

func (a *Adapter) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.timeout > 0 {
		return context.WithTimeout(ctx, a.timeout)
	}
	return context.WithCancel(ctx)
}

// IssueBillingKey turns a PaymentMethod collected by Stripe's card-registration flow (authKey, "pm_...")
// into a billing key: a Customer tagged with customerKey and the PaymentMethod attached to it. Both calls
// carry an idempotency key derived from the inputs, so a resend within Stripe's 24 h idempotency window
// reuses the same Customer instead of making another.
func (a *Adapter) IssueBillingKey(ctx context.Context, customerKey, authKey string) (gateway.IssuedKey, error) {
	if customerKey == "" || authKey == "" {
		return gateway.IssuedKey{}, fmt.Errorf("%w: customer key and payment method are required", ErrInvalidRequest)
	}
	if strings.Contains(authKey, tokenSep) {
		return gateway.IssuedKey{}, &gateway.DeclineError{Code: "invalid_payment_method", Message: "not a payment method id"}
	}
	ctx, cancel := a.callContext(ctx)
	defer cancel()
	idem := issueIdempotencyKey(customerKey, authKey)

	cp := &sg.CustomerCreateParams{}
	cp.Metadata = map[string]string{"customer_key": customerKey}
	cp.SetIdempotencyKey(idem + "-customer")
	cus, err := a.client.V1Customers.Create(ctx, cp)
	if err != nil {
		return gateway.IssuedKey{}, issueError("create customer", err)
	}

	ap := &sg.PaymentMethodAttachParams{Customer: sg.String(cus.ID)}
	ap.SetIdempotencyKey(idem + "-attach")
	pm, err := a.client.V1PaymentMethods.Attach(ctx, authKey, ap)
	if err != nil {
		return gateway.IssuedKey{}, issueError("attach payment method", err)
	}

	card := gateway.Card{}
	if pm.Card != nil {
		brand := pm.Card.DisplayBrand
		if brand == "" {
			brand = string(pm.Card.Brand)
		}
		card.Brand = strings.ToUpper(brand)
		if pm.Card.Last4 != "" {
			card.MaskedNumber = "**** **** **** " + pm.Card.Last4
		}
	}
	return gateway.IssuedKey{Token: gateway.NewBillingKeyToken(cus.ID + tokenSep + pm.ID), Card: card}, nil
}

func issueIdempotencyKey(customerKey, authKey string) string {
	sum := sha256.Sum256([]byte(customerKey + "\x00" + authKey))
	return "billing-key-" + hex.EncodeToString(sum[:16])
}

// issueError maps a failure to issue a billing key. Stripe declining the card is a card DeclineError
// (402); refusing the PaymentMethod (no such id, attached elsewhere) a request DeclineError (422); refusing
// our key (401, 403) a MerchantError; a 429 is try-later; everything else is an error to retry later.
func issueError(step string, err error) error {
	var se *sg.Error
	if errors.As(err, &se) {
		switch {
		case se.HTTPStatusCode == http.StatusTooManyRequests:
			return tryLater(se)
		case se.Type == sg.ErrorTypeCard:
			code := declineCode(se)
			class, _ := Classify(code, errorAdvice(se))
			return &gateway.DeclineError{Code: code, Message: se.Msg, Card: true, Class: class}
		case merchantSide(se):
			return &gateway.MerchantError{Gateway: Name, Status: se.HTTPStatusCode, Code: codeOr(string(se.Code), string(se.Type)), Message: se.Msg}
		case se.Type == sg.ErrorTypeInvalidRequest && (se.HTTPStatusCode == http.StatusBadRequest || se.HTTPStatusCode == http.StatusNotFound):
			// "No such PaymentMethod", "already attached to another customer", ...: the auth key is unusable.
			return &gateway.DeclineError{Code: codeOr(string(se.Code), "invalid_request"), Message: se.Msg}
		}
	}
	return fmt.Errorf("stripe: %s: %w", step, err)
}

// merchantSide reports a refusal of our API key or account: a wrong, expired or rotated key (401) or a
// key without the permission (403).
func merchantSide(se *sg.Error) bool {
	return se.HTTPStatusCode == http.StatusUnauthorized || se.HTTPStatusCode == http.StatusForbidden ||
		se.Type == "authentication_error" || se.Type == "permission_error"
}

// SupportsCurrency reports whether Stripe charges in currency: every currency whose minor unit this
// service knows (Stripe's list is longer than ours).
func (a *Adapter) SupportsCurrency(currency string) bool {
	_, err := money.MinorUnit(strings.ToUpper(currency))
	return err == nil
}

const tokenSep = "|"

func parseToken(t gateway.BillingKeyToken) (customer, paymentMethod string, err error) {
	customer, paymentMethod, ok := strings.Cut(t.Reveal(), tokenSep)
	if !ok || customer == "" || paymentMethod == "" || strings.Contains(paymentMethod, tokenSep) {
		return "", "", ErrMalformedBillingKey
	}
	return customer, paymentMethod, nil
}

// Charge confirms an off-session PaymentIntent for the saved card. The request's IdempotencyKey is
// Stripe's Idempotency-Key, so a resend of the same attempt returns the first answer instead of charging
// twice (within Stripe's 24 h key retention; later, Lookup by order id is the tool).
func (a *Adapter) Charge(ctx context.Context, req gateway.ChargeRequest) (gateway.Outcome, error) {
	customer, pm, err := parseToken(req.BillingKey)
	if err != nil {
		return gateway.Outcome{}, err
	}
	if req.OrderID == "" || req.IdempotencyKey == "" {
		return gateway.Outcome{}, fmt.Errorf("%w: order id and idempotency key are required", ErrInvalidRequest)
	}
	if !a.SupportsCurrency(req.Currency) {
		return gateway.CurrencyRefused(Name, req.Currency), nil
	}
	amount, err := toMinor(req.Amount, req.Currency)
	if err != nil {
		return gateway.Outcome{}, err
	}
	if err := ctx.Err(); err != nil {
		return gateway.Outcome{}, fmt.Errorf("stripe charge %s not sent: %w", req.OrderID, err)
	}
	ctx, cancel := a.callContext(ctx)
	defer cancel()

	params := &sg.PaymentIntentCreateParams{
		Amount:        sg.Int64(amount),
		Currency:      sg.String(strings.ToLower(req.Currency)),
		Customer:      sg.String(customer),
		PaymentMethod: sg.String(pm),
		// Card only: with automatic payment methods a confirm=true create needs a return_url for
		// redirect-based methods, which an off-session renewal can never follow.
		PaymentMethodTypes: []*string{sg.String("card")},
		Confirm:            sg.Bool(true),
		OffSession:         sg.Bool(true),
		Metadata:           map[string]string{"order_id": req.OrderID},
	}
	if req.CustomerKey != "" {
		params.Metadata["customer_key"] = req.CustomerKey
	}
	if req.OrderName != "" {
		params.Description = sg.String(req.OrderName)
	}
	params.SetIdempotencyKey(req.IdempotencyKey)

	pi, err := a.client.V1PaymentIntents.Create(ctx, params)
	if err != nil {
		return errorOutcome(err)
	}
	return intentOutcome(pi, lastPaymentAdvice(pi.LastResponse)), nil
}

// errorOutcome maps a failed Charge or Lookup call. Only a 429 (Stripe processed nothing) is an error;
// a refusal of our key or request is Refused; anything that may have reached the card networks is Unknown.
func errorOutcome(err error) (gateway.Outcome, error) {
	var se *sg.Error
	if !errors.As(err, &se) {
		// Transport failure, timeout, reset, unreadable body: the request may have been processed.
		return gateway.Outcome{Kind: gateway.Unknown, Reason: "transport: " + err.Error()}, nil
	}
	switch {
	case se.HTTPStatusCode == http.StatusTooManyRequests:
		return gateway.Outcome{}, tryLater(se)
	case se.Type == sg.ErrorTypeCard:
		code := declineCode(se)
		class, _ := Classify(code, errorAdvice(se))
		o := gateway.Outcome{Kind: gateway.Declined, DeclineCode: code, DeclineClass: class, Message: se.Msg}
		if se.PaymentIntent != nil {
			o.PaymentKey = se.PaymentIntent.ID
		}
		return o, nil
	case se.Type == sg.ErrorTypeIdempotency, se.HTTPStatusCode == http.StatusConflict:
		// The key is in flight or was used with other parameters: the first request may have charged.
		return gateway.Outcome{Kind: gateway.Unknown, Reason: "idempotency: " + codeOr(string(se.Code), se.Msg)}, nil
	case se.HTTPStatusCode >= 500 || se.Type == sg.ErrorTypeAPI:
		return gateway.Outcome{Kind: gateway.Unknown, Reason: fmt.Sprintf("stripe %d: %s", se.HTTPStatusCode, codeOr(string(se.Code), se.Msg))}, nil
	case se.Code == sg.ErrorCodeResourceMissing && (se.Param == "customer" || se.Param == "payment_method"):
		// The saved card or its customer was deleted at Stripe: this billing key can never charge again.
		return gateway.Outcome{Kind: gateway.Declined, DeclineCode: string(se.Code), DeclineClass: gateway.Hard, Message: se.Msg}, nil
	default:
		// Our key (401, 403) or our request (400, 404 not about the card) was refused before anything was
		// processed: no money moved, and resending cannot help until an operator fixes our side.
		code := codeOr(string(se.Code), string(se.Type))
		return gateway.Outcome{Kind: gateway.Refused, DeclineCode: code,
			Message: fmt.Sprintf("%v: stripe %d %s: %s", ErrRequestRejected, se.HTTPStatusCode, code, se.Msg)}, nil
	}
}

func tryLater(se *sg.Error) error {
	e := &gateway.TryLaterError{Gateway: Name, Cause: "stripe rate limit: " + codeOr(string(se.Code), "429")}
	if se.LastResponse != nil {
		if s, err := strconv.Atoi(se.LastResponse.Header.Get("Retry-After")); err == nil && s > 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
	}
	return e
}

func declineCode(se *sg.Error) string {
	if se.DeclineCode != "" {
		return string(se.DeclineCode)
	}
	return codeOr(string(se.Code), "card_declined")
}

func codeOr(code, fallback string) string {
	if code != "" {
		return code
	}
	return fallback
}

// errorAdvice reads advice_code from the error body; stripe-go's Error type does not carry it.
func errorAdvice(se *sg.Error) string {
	if se.LastResponse == nil {
		return ""
	}
	var body struct {
		Error struct {
			AdviceCode string `json:"advice_code"`
		} `json:"error"`
	}
	if json.Unmarshal(se.LastResponse.RawJSON, &body) != nil {
		return ""
	}
	return body.Error.AdviceCode
}

// rawIntent holds what stripe-go's PaymentIntent drops: last_payment_error.advice_code.
type rawIntent struct {
	LastPaymentError *struct {
		AdviceCode string `json:"advice_code"`
	} `json:"last_payment_error"`
}

func (r rawIntent) advice() string {
	if r.LastPaymentError == nil {
		return ""
	}
	return r.LastPaymentError.AdviceCode
}

func lastPaymentAdvice(res *sg.APIResponse) string {
	if res == nil {
		return ""
	}
	var r rawIntent
	if json.Unmarshal(res.RawJSON, &r) != nil {
		return ""
	}
	return r.advice()
}

// intentOutcome reads a PaymentIntent. Only succeeded, processing and requires_capture mean money may
// have moved; every other status is a PaymentIntent that did not collect.
func intentOutcome(pi *sg.PaymentIntent, advice string) gateway.Outcome {
	switch pi.Status {
	case sg.PaymentIntentStatusSucceeded:
		o := gateway.Outcome{
			Kind:       gateway.Succeeded,
			PaymentKey: pi.ID,
			ApprovedAt: time.Unix(pi.Created, 0).UTC(),
			Amount:     fromMinor(received(pi), string(pi.Currency)),
			Currency:   strings.ToUpper(string(pi.Currency)),
		}
		if ch := pi.LatestCharge; ch != nil && ch.Created != 0 {
			o.ApprovedAt = time.Unix(ch.Created, 0).UTC()
			// A partial refund keeps the payment Succeeded (part of the money stayed); a full one is Canceled.
			o.Refunded = fromMinor(ch.AmountRefunded, string(pi.Currency))
			if ch.Refunded {
				o.Kind = gateway.Canceled
				o.Refunded = o.Amount
			}
			if ch.Refunds != nil {
				for _, r := range ch.Refunds.Data {
					if r == nil || r.Status == sg.RefundStatusFailed || r.Status == sg.RefundStatusCanceled {
						continue
					}
					o.Refunds = append(o.Refunds, gateway.Refund{ID: r.ID, Amount: fromMinor(r.Amount, string(r.Currency)),
						Reason: r.Metadata["cancel_reason"], At: time.Unix(r.Created, 0).UTC(), Reference: r.Metadata["idempotency_key"]})
				}
			}
		}
		return o
	case sg.PaymentIntentStatusProcessing, sg.PaymentIntentStatusRequiresCapture:
		return gateway.Outcome{Kind: gateway.Unknown, PaymentKey: pi.ID, Reason: "payment intent " + string(pi.Status)}
	case sg.PaymentIntentStatusRequiresAction:
		class, _ := Classify("authentication_required", advice)
		return gateway.Outcome{Kind: gateway.Declined, PaymentKey: pi.ID, DeclineCode: "authentication_required", DeclineClass: class, Message: "payment requires customer authentication"}
	case sg.PaymentIntentStatusRequiresPaymentMethod:
		code, msg := "requires_payment_method", "payment method was declined"
		if e := pi.LastPaymentError; e != nil {
			code, msg = declineCode(e), e.Msg
		}
		class, _ := Classify(code, advice)
		return gateway.Outcome{Kind: gateway.Declined, PaymentKey: pi.ID, DeclineCode: code, DeclineClass: class, Message: msg}
	case sg.PaymentIntentStatusCanceled, sg.PaymentIntentStatusRequiresConfirmation:
		return gateway.Outcome{Kind: gateway.Declined, PaymentKey: pi.ID, DeclineCode: "payment_intent_" + string(pi.Status), DeclineClass: gateway.Soft, Message: "payment intent did not collect"}
	default:
		return gateway.Outcome{Kind: gateway.Unknown, PaymentKey: pi.ID, Reason: "payment intent status " + string(pi.Status)}
	}
}

func received(pi *sg.PaymentIntent) int64 {
	if pi.AmountReceived > 0 {
		return pi.AmountReceived
	}
	return pi.Amount
}
