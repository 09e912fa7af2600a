// Package gateway is the port between billing and payment gateways ("PG").
//
// Every adapter (toss, stripe, sim) implements Gateway. A charge has three outcomes, not two: Succeeded,
// Declined (with a hard/soft class) or Unknown. Transport errors, timeouts after the request was written,
// 5xx and "still processing" answers are Unknown, never Declined: the money may have moved, and only a
// Lookup by order id (or a verified webhook) can tell.
package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Name identifies a gateway: "toss", "stripe", "sim".
type Name string

// DeclineClass says whether retrying the same billing key can succeed.
type DeclineClass string

const (
	// Hard declines (stolen, lost, expired, stopped card, do-not-retry) stop retries on that key.
	Hard DeclineClass = "hard"
	// Soft declines (insufficient funds, issuer unavailable, ...) are retried on the dunning backoff.
	Soft DeclineClass = "soft"
)

// BillingKeyToken is the raw billing key a gateway issued. It is a secret: it never prints, never
// marshals, never logs. Use Reveal only to put it on the wire to its gateway.
type BillingKeyToken struct{ v string }

// NewBillingKeyToken wraps a raw token.
func NewBillingKeyToken(raw string) BillingKeyToken { return BillingKeyToken{v: raw} }

// Reveal returns the raw token, for the gateway request and the vault's encryption only.
func (t BillingKeyToken) Reveal() string { return t.v }

// IsZero reports whether the token is empty.
func (t BillingKeyToken) IsZero() bool { return t.v == "" }

// String never shows the secret.
func (t BillingKeyToken) String() string { return "[REDACTED]" }

// GoString never shows the secret, even with %#v.
func (t BillingKeyToken) GoString() string { return "[REDACTED]" }

// MarshalJSON never shows the secret.
func (t BillingKeyToken) MarshalJSON() ([]byte, error) { return []byte(`"[REDACTED]"`), nil }

// MarshalText never shows the secret.
func (t BillingKeyToken) MarshalText() ([]byte, error) { return []byte("[REDACTED]"), nil }

// Card is what may be shown about a card.
type Card struct {
	Brand        string // issuer or brand, e.g. "VISA", "신한"
	MaskedNumber string // e.g. "4330-12**-****-123*"
}

// Label is how a customer recognizes the card: the brand and the number's last four characters,
// "VISA •••• 4242". Gateways mask differently (Stripe shows the last four digits, Toss hides the last
// one: "4330-12**-****-123*" is "•••• 123•"), so the last four are shown as the gateway gave them, a
// hidden digit as "•". No number: the brand alone.
func (c Card) Label() string {
	var last []rune
	for _, r := range c.MaskedNumber {
		switch {
		case r >= '0' && r <= '9':
			last = append(last, r)
		case r == '*' || r == '•' || r == 'x' || r == 'X':
			last = append(last, '•')
		}
	}
	if len(last) > 4 {
		last = last[len(last)-4:]
	}
	brand := strings.TrimSpace(c.Brand)
	if len(last) == 0 {
		return brand
	}
	return strings.TrimSpace(brand + " •••• " + string(last))
}

// IssuedKey is the result of issuing a billing key.
type IssuedKey struct {
	Token BillingKeyToken
	Card  Card
}

// ChargeRequest is one charge of a billing key. OrderID and IdempotencyKey are deterministic per payment
// attempt and are sent unchanged on every resend of that attempt.
type ChargeRequest struct {
	BillingKey     BillingKeyToken
	CustomerKey    string
	OrderID        string
	IdempotencyKey string
	Amount         decimal.Decimal
	Currency       string
	OrderName      string
	CustomerEmail  string
	// TaxFreeAmount is the part of Amount no VAT is in (Toss's taxFreeAmount); the gateway reports VAT on
	// the rest.
	TaxFreeAmount decimal.Decimal
}

// OutcomeKind is the class of a charge or lookup result.
type OutcomeKind string

const (
	Succeeded OutcomeKind = "succeeded"
	Declined  OutcomeKind = "declined"
	Unknown   OutcomeKind = "unknown"
	// NotFound is only returned by Lookup: the gateway has no payment for the order id.
	NotFound OutcomeKind = "not_found"
	// Canceled is only returned by Lookup: the payment was made and later canceled (refunded).
	Canceled OutcomeKind = "canceled"
	// Refused: the gateway refused the request for a merchant-side reason (credentials, contract, request
	// shape, currency) before processing it. No money moved, it is not the customer's decline, and sending
	// the same request again cannot succeed until an operator fixes our side. DeclineCode and Message carry
	// the gateway's code and message.
	Refused OutcomeKind = "refused"
)

// Outcome is the result of a Charge or a Lookup.
type Outcome struct {
	Kind OutcomeKind

	// Succeeded (and Canceled)
	PaymentKey string
	ApprovedAt time.Time
	Amount     decimal.Decimal
	Currency   string
	// VAT is the value-added tax the gateway says the payment contains (Toss: vat), nil when it says none.
	VAT *decimal.Decimal

	// Declined
	DeclineCode  string
	DeclineClass DeclineClass
	Message      string

	// Unknown: why we could not tell (timeout, reset, 5xx, processing code, ...).
	Reason string

	// Refunded is how much of the payment the gateway has refunded (canceled) so far: zero for a payment
	// kept whole, Amount for a Canceled one, in between for a partial cancel (which is Succeeded: part of
	// the money stayed). Filled by Lookup.
	Refunded decimal.Decimal
	// Refunds are the payment's refunds as the gateway lists them, oldest first (Lookup; nil when the
	// gateway did not list them).
	Refunds []Refund
}

// Refund is one refund (Toss: one cancel) of a payment at the gateway.
type Refund struct {
	ID     string // the gateway's id: Toss's cancel transactionKey, Stripe's refund id
	Amount decimal.Decimal
	Reason string
	At     time.Time
	// Reference is the idempotency key of the Cancel that made it, when the gateway echoes it back (the
	// adapters embed it); empty for a refund made elsewhere, e.g. in the gateway's dashboard.
	Reference string
}

// Transaction is one line of the gateway's transaction list, for reconciliation.
type Transaction struct {
	TransactionKey string
	PaymentKey     string
	OrderID        string
	Status         string // gateway's status, e.g. DONE, CANCELED
	At             time.Time
	Amount         decimal.Decimal
	Currency       string
}

// EventKind is the kind of an inbound webhook event.
type EventKind string

const (
	// PaymentStatusChanged is a hint that an order's payment changed; re-fetch it with Lookup.
	PaymentStatusChanged EventKind = "payment_status_changed"
	// OtherEvent is any event the service does not act on; it is stored and acknowledged.
	OtherEvent EventKind = "other"
)

// Event is an inbound webhook after verification.
type Event struct {
	ID      string // unique per gateway; the inbox key
	Kind    EventKind
	OrderID string // for PaymentStatusChanged
	// PaymentKey is the gateway's payment id when the event names no order id of ours (Stripe's
	// charge.refunded carries the Charge, whose metadata is not the PaymentIntent's); the receiver finds
	// the order by it.
	PaymentKey string
	Status     string // the gateway's status in the event (a hint only)
	CreatedAt  time.Time
	Raw        []byte
}

// Gateway is the port every adapter implements. Every method honors ctx's deadline.
type Gateway interface {
	Name() Name
	// IssueBillingKey exchanges an auth key from the gateway's card-registration flow for a billing key.
	// A refusal of the card or the auth key is a *DeclineError; of our credentials, a *MerchantError.
	IssueBillingKey(ctx context.Context, customerKey, authKey string) (IssuedKey, error)
	// SupportsCurrency reports whether the gateway can charge in currency (ISO 4217).
	SupportsCurrency(currency string) bool
	// Charge charges a billing key. A non-nil error is only returned for a request that was certainly
	// not sent (e.g. ErrTryLater, invalid input); a merchant-side refusal, including a currency the gateway
	// does not take (CurrencyRefused, decided without sending), is an Outcome of kind Refused; every other
	// failure is an Outcome of kind Unknown.
	Charge(ctx context.Context, req ChargeRequest) (Outcome, error)
	// Lookup finds the payment for an order id. Kind is Succeeded, Declined, Canceled, NotFound, Unknown,
	// or Refused when the gateway refused our credentials (the order's fate is then still unknown).
	Lookup(ctx context.Context, orderID string) (Outcome, error)
	// Cancel refunds (fully or partly; a zero amount is the whole remaining balance) a payment. The
	// idempotency key is sent as the gateway's and echoed in the refund's Reference, so a Lookup can tell
	// whether this refund happened. A *RefundRefusedError is a definite refusal (nothing was refunded by
	// this request); ErrTryLater means it was not sent; any other error leaves the outcome unknown.
	Cancel(ctx context.Context, paymentKey, reason string, amount decimal.Decimal, idempotencyKey string) error
	// DeleteBillingKey deletes a billing key at the gateway (Toss: DELETE /v1/billing/{billingKey}; Stripe:
	// detach the payment method), so that nobody, us included, can charge it again. nil means the key is
	// gone: deleted now, or already unknown to the gateway (a 404 counts as done). ErrTryLater means it
	// was not sent; a *MerchantError is a refusal of our credentials; any other error leaves it undone,
	// to be retried.
	DeleteBillingKey(ctx context.Context, key BillingKeyToken, customerKey string) error
	// Transactions lists the gateway's transactions in [from, to), for daily reconciliation.
	Transactions(ctx context.Context, from, to time.Time) ([]Transaction, error)
	// ParseWebhook verifies (where the gateway signs) and parses an inbound webhook.
	ParseWebhook(r *http.Request) (Event, error)
}

// ErrTryLater means the request was not sent: the gateway's circuit is open or its rate limit is spent.
// It is never a decline and never advances dunning; the caller snoozes and tries again.
var ErrTryLater = errors.New("gateway unavailable, try later")

// ErrAuthKeyRejected means the gateway refused to issue a billing key for the given auth key.
var ErrAuthKeyRejected = errors.New("gateway rejected the auth key")

// ErrInvalidSignature means a webhook failed verification.
var ErrInvalidSignature = errors.New("webhook signature invalid")

// ErrNotSupported is returned by an adapter for an operation its gateway does not offer.
var ErrNotSupported = errors.New("not supported by this gateway")

// ErrRefundRefused matches a *RefundRefusedError.
var ErrRefundRefused = errors.New("gateway refused the refund")

// RefundRefusedError is a gateway's definite refusal of a Cancel (e.g. more than the balance, already
// canceled, not cancelable).
type RefundRefusedError struct {
	Code    string
	Message string
}

func (e *RefundRefusedError) Error() string {
	return "gateway refused the refund: " + e.Code + ": " + e.Message
}

// Is makes errors.Is(err, ErrRefundRefused) true for a *RefundRefusedError.
func (e *RefundRefusedError) Is(target error) bool { return target == ErrRefundRefused }

// TryLaterError carries how long to wait when known (e.g. a 429's Retry-After).
type TryLaterError struct {
	Gateway    Name
	RetryAfter time.Duration
	Cause      string
}

func (e *TryLaterError) Error() string {
	return string(e.Gateway) + ": try later (" + e.Cause + ")"
}

// Is makes errors.Is(err, ErrTryLater) true for a *TryLaterError.
func (e *TryLaterError) Is(target error) bool { return target == ErrTryLater }

// DeclineError is returned by IssueBillingKey when the gateway refuses the card or the auth key: the
// client's problem, never ours, and never worth a retry with the same input.
//
// Card is true when the card itself was declined (stolen, expired, refused by its issuer): the API answers
// 402 with the gateway's code as decline_code, Class saying whether another try of the card can succeed.
// Otherwise the request was refused (an expired, reused or unknown auth key, a customer key that does not
// match it, a malformed request): 422.
type DeclineError struct {
	Code    string
	Message string
	Card    bool
	Class   DeclineClass // for a card decline
}

func (e *DeclineError) Error() string { return "gateway declined: " + e.Code + ": " + e.Message }

// Is makes errors.Is(err, ErrAuthKeyRejected) true for a *DeclineError.
func (e *DeclineError) Is(target error) bool { return target == ErrAuthKeyRejected }

// ErrMerchantRefused means the gateway refused the merchant's side of a request: its credentials (a
// rotated or wrong secret key), its contract or its configuration. It is never the customer's fault, and
// no retry of the same request can succeed until an operator fixes our side.
var ErrMerchantRefused = errors.New("gateway refused the merchant's request")

// MerchantError is a refusal by the gateway of our credentials or configuration (errors.Is
// ErrMerchantRefused). Operations other than Charge and Lookup return it; those two report an Outcome of
// kind Refused instead.
type MerchantError struct {
	Gateway Name
	Status  int // the gateway's HTTP status
	Code    string
	Message string
}

func (e *MerchantError) Error() string {
	return string(e.Gateway) + ": the gateway refused our request (merchant side): " + e.Code + ": " + e.Message
}

// Is makes errors.Is(err, ErrMerchantRefused) true for a *MerchantError.
func (e *MerchantError) Is(target error) bool { return target == ErrMerchantRefused }

// CodeCurrencyNotSupported is the DeclineCode of the Refused outcome an adapter answers, without sending
// anything, for a charge in a currency its gateway does not take.
const CodeCurrencyNotSupported = "CURRENCY_NOT_SUPPORTED"

// CurrencyRefused is the outcome of a charge in a currency the gateway does not take.
func CurrencyRefused(gw Name, currency string) Outcome {
	return Outcome{Kind: Refused, DeclineCode: CodeCurrencyNotSupported,
		Message: string(gw) + " does not charge in " + currency + "; nothing was sent"}
}
