package toss

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/shopspring/decimal"
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
	body := cancelBody{CancelReason: reason}
	if amt.IsPositive() {
		v := amount(amt)
		body.CancelAmount = &v
	}
	if idempotencyKey == "" {
		idempotencyKey = derivedKey("cancel", paymentKey, reason, amt.String())
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
		return fmt.Errorf("%s: cancel %s: %w", a.name, paymentKey, &APIError{Status: ans.status, Code: e.Code, Message: e.Message})
	}
}
