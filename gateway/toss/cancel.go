package toss

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/gateway"
)

type cancelBody struct {
	CancelReason string  `json:"cancelReason"`
	CancelAmount *amount `json:"cancelAmount,omitempty"`
}

// Cancel refunds a payment: POST /v1/payments/{paymentKey}/cancel. A zero amount cancels the whole
// remaining balance. With an empty idempotencyKey one is derived from the arguments, so a resend of the
// same cancel is never a second refund. Any non-200 answer is an *APIError (e.g. ALREADY_CANCELED_PAYMENT,
// NOT_CANCELABLE_AMOUNT); a 429 is a *gateway.TryLaterError.
func (a *Adapter) Cancel(ctx context.Context, paymentKey, reason string, amt decimal.Decimal, idempotencyKey string) error {
	if paymentKey == "" {
		return fmt.Errorf("%w: empty payment key", ErrInvalidRequest)
	}
	if amt.IsNegative() {
		return fmt.Errorf("%w: negative cancel amount %s", ErrInvalidRequest, amt)
	}
	if reason == "" {
		reason = "canceled by merchant"
	}
	if idempotencyKey == "" {
		idempotencyKey = derivedKey("cancel", paymentKey, reason, amt.String())
	}
	body := cancelBody{CancelReason: withReference(reason, idempotencyKey)}
	if amt.IsPositive() {
		v := amount(amt)
		body.CancelAmount = &v
	}
	ans, err := a.do(ctx, http.MethodPost, "/v1/payments/"+url.PathEscape(paymentKey)+"/cancel", idempotencyKey, "", body)
	if err != nil {
		if !wasSent(err) {
			return a.notSent(err)
		}
		return fmt.Errorf("%s: cancel %s: outcome unknown: %w", a.name, paymentKey, err)
	}
	switch {
	case ans.status == http.StatusOK:
		return nil
	case ans.status == http.StatusTooManyRequests:
		return a.tryLater(ans)
	default:
		e, _ := parseError(ans.body)
		apiErr := &APIError{Status: ans.status, Code: e.Code, Message: e.Message}
		if ans.status >= 400 && ans.status < 500 && e.Code != "IDEMPOTENT_REQUEST_PROCESSING" {
			// A 4xx is Toss's answer about this cancel: nothing was refunded by it.
			return fmt.Errorf("%s: cancel %s: %w: %w", a.name, paymentKey, &gateway.RefundRefusedError{Code: e.Code, Message: e.Message}, apiErr)
		}
		return fmt.Errorf("%s: cancel %s: outcome unknown: %w", a.name, paymentKey, apiErr)
	}
}

// maxCancelReason is Toss's limit on cancelReason, in characters.
const maxCancelReason = 200

// withReference appends the cancel's idempotency key to its reason, "[key]": Toss echoes the reason in
// the payment's cancels, which is how a lookup tells our refund from one made in the dashboard.
func withReference(reason, key string) string {
	ref := " [" + key + "]"
	r := []rune(reason)
	if max := maxCancelReason - len([]rune(ref)); len(r) > max {
		r = r[:max]
	}
	return string(r) + ref
}

// cancelReference is the idempotency key withReference put in a reason, or "".
func cancelReference(reason string) string {
	if !strings.HasSuffix(reason, "]") {
		return ""
	}
	i := strings.LastIndex(reason, " [")
	if i < 0 {
		return ""
	}
	return reason[i+2 : len(reason)-1]
}
