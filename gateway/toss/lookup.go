package toss

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/dunningworks/billing/gateway"
)

// Lookup fetches the payment for an order id: GET /v1/payments/orders/{orderId}.
//
// DONE is Succeeded; CANCELED and PARTIAL_CANCELED are Canceled (Amount is the original total); ABORTED and
// EXPIRED are Declined; anything in flight is Unknown; 404 NOT_FOUND_PAYMENT is NotFound. Transport errors,
// 5xx and unreadable answers are Unknown, never an error: only a 429 (*gateway.TryLaterError), a request
// that could not be sent, or an empty order id return an error.
func (a *Adapter) Lookup(ctx context.Context, orderID string) (gateway.Outcome, error) {
	if orderID == "" {
		return gateway.Outcome{}, fmt.Errorf("%w: empty order id", ErrInvalidRequest)
	}
	ans, err := a.do(ctx, http.MethodGet, "/v1/payments/orders/"+url.PathEscape(orderID), "", "", nil)
	if err != nil {
		if !wasSent(err) {
			return gateway.Outcome{}, a.notSent(err)
		}
		return unknown("lookup transport: %v", err), nil
	}
	switch {
	case ans.status == http.StatusOK:
		var p payment
		if err := json.Unmarshal(ans.body, &p); err != nil {
			return unknown("unparseable lookup answer: %v: %s", err, snippet(ans.body)), nil
		}
		if p.OrderID != orderID {
			return unknown("lookup answered order %q, expected %q", p.OrderID, orderID), nil
		}
		return paymentOutcome(p), nil
	case ans.status == http.StatusTooManyRequests:
		return gateway.Outcome{}, a.tryLater(ans)
	case ans.status == http.StatusNotFound:
		// Only Toss's own "no such payment" proves absence; a bare 404 may be a proxy or a wrong route.
		if e, ok := parseError(ans.body); ok && (e.Code == "NOT_FOUND_PAYMENT" || e.Code == "NOT_FOUND") {
			return gateway.Outcome{Kind: gateway.NotFound, Message: e.Message}, nil
		}
		return unknown("lookup HTTP 404 without NOT_FOUND_PAYMENT: %s", snippet(ans.body)), nil
	default:
		e, ok := parseError(ans.body)
		if c, _ := Classify(e.Code); ok && ans.status < 500 && (ans.status == http.StatusUnauthorized || c == ClassTechnical) {
			// Our credentials were refused: the order's fate is still unknown, and stays so until an
			// operator fixes the key. Refused says so, so it can alert instead of looking quietly forever.
			return refused(ans.status, e), nil
		}
		return unknown("lookup HTTP %d %s: %s", ans.status, e.Code, e.Message), nil
	}
}
