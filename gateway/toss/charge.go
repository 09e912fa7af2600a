package toss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/dunningworks/billing/gateway"
)

// ErrInvalidRequest is returned, before anything is sent, for a request the adapter cannot send.
var ErrInvalidRequest = errors.New("invalid gateway request")

type chargeBody struct {
	CustomerKey   string `json:"customerKey"`
	Amount        amount `json:"amount"`
	OrderID       string `json:"orderId"`
	OrderName     string `json:"orderName"`
	CustomerEmail string `json:"customerEmail,omitempty"`
	// TaxFreeAmount is the tax-free part of amount; Toss computes VAT as (amount - taxFreeAmount) / 11.
	TaxFreeAmount amount `json:"taxFreeAmount"`
	// Currency is not a field of Toss's billing approval, which is KRW only. It is sent only for another
	// currency, which only a gateway configured with Config.Currencies (pgsim) takes.
	Currency string `json:"currency,omitempty"`
}

// Charge approves a payment on a billing key: POST /v1/billing/{billingKey}.
func (a *Adapter) Charge(ctx context.Context, req gateway.ChargeRequest) (gateway.Outcome, error) {
	switch {
	case req.BillingKey.IsZero():
		return gateway.Outcome{}, fmt.Errorf("%w: empty billing key", ErrInvalidRequest)
	case req.OrderID == "":
		return gateway.Outcome{}, fmt.Errorf("%w: empty order id", ErrInvalidRequest)
	case req.IdempotencyKey == "":
		return gateway.Outcome{}, fmt.Errorf("%w: empty idempotency key", ErrInvalidRequest)
	case !req.Amount.IsPositive():
		return gateway.Outcome{}, fmt.Errorf("%w: amount %s is not positive", ErrInvalidRequest, req.Amount)
	case req.Currency != "" && !a.SupportsCurrency(req.Currency):
		return gateway.CurrencyRefused(a.name, req.Currency), nil
	}
	body := chargeBody{
		CustomerKey:   req.CustomerKey,
		Amount:        amount(req.Amount),
		OrderID:       req.OrderID,
		OrderName:     req.OrderName,
		CustomerEmail: req.CustomerEmail,
		TaxFreeAmount: amount(req.TaxFreeAmount),
	}
	if req.Currency != "" && req.Currency != "KRW" {
		body.Currency = req.Currency
	}
	if body.OrderName == "" {
		body.OrderName = req.OrderID
	}
	ans, err := a.do(ctx, http.MethodPost, "/v1/billing/"+url.PathEscape(req.BillingKey.Reveal()), req.IdempotencyKey, req.BillingKey.Reveal(), body)
	if err != nil {
		if !wasSent(err) {
			return gateway.Outcome{}, a.notSent(err)
		}
		return unknown("transport: %v", err), nil
	}
	switch {
	case ans.status == http.StatusOK:
		var p payment
		if err := json.Unmarshal(ans.body, &p); err != nil {
			return unknown("unparseable 200 answer: %v: %s", err, snippet(ans.body)), nil
		}
		if p.OrderID != "" && p.OrderID != req.OrderID {
			return unknown("200 answer for order %q, expected %q", p.OrderID, req.OrderID), nil
		}
		return paymentOutcome(p), nil
	case ans.status == http.StatusTooManyRequests:
		return gateway.Outcome{}, a.tryLater(ans)
	case ans.status >= 500:
		e, _ := parseError(ans.body)
		return unknown("HTTP %d %s: %s", ans.status, e.Code, e.Message), nil
	case ans.status >= 400:
		e, ok := parseError(ans.body)
		if !ok {
			return unknown("HTTP %d without a Toss error: %s", ans.status, snippet(ans.body)), nil
		}
		if ans.status == http.StatusUnauthorized {
			return refused(ans.status, e), nil
		}
		return a.classifyChargeError(ctx, req.OrderID, ans.status, e), nil
	default:
		return unknown("unexpected HTTP %d: %s", ans.status, snippet(ans.body)), nil
	}
}

func (a *Adapter) classifyChargeError(ctx context.Context, orderID string, status int, e errorBody) gateway.Outcome {
	class, listed := Classify(e.Code)
	switch class {
	case ClassAlreadyDone:
		// A resend of an order Toss already processed: what happened is whatever the order looks like now.
		out, err := a.Lookup(ctx, orderID)
		if err != nil {
			return unknown("%s, and the lookup failed: %v", e.Code, err)
		}
		if out.Kind == gateway.Succeeded {
			return out
		}
		return unknown("%s, and the lookup found %s", e.Code, out.Kind)
	case ClassUnknown:
		return unknown("HTTP %d %s: %s", status, e.Code, e.Message)
	case ClassTechnical:
		// Toss refused our side of the request before processing it: no money moved, and the same request
		// cannot succeed until an operator fixes the key, the contract or the request.
		return refused(status, e)
	}
	msg := e.Message
	if !listed {
		msg = "unlisted code, treated as soft: " + msg
	}
	return gateway.Outcome{Kind: gateway.Declined, DeclineCode: e.Code, DeclineClass: declineClass(class), Message: msg}
}

// paymentOutcome maps a Toss Payment object to an outcome.
func paymentOutcome(p payment) gateway.Outcome {
	switch p.Status {
	case statusDone, statusCanceled, statusPartialCanceled:
		if p.PaymentKey == "" {
			return unknown("payment is %s but has no paymentKey", p.Status)
		}
		at, err := parseTime(p.ApprovedAt)
		if err != nil {
			return unknown("payment %s is %s but approvedAt is unreadable: %v", p.PaymentKey, p.Status, err)
		}
		// A partial cancel kept part of the money: the payment succeeded and was partly refunded. Only a
		// full cancel is Canceled.
		kind := gateway.Succeeded
		if p.Status == statusCanceled {
			kind = gateway.Canceled
		}
		cur := p.Currency
		if cur == "" {
			cur = "KRW"
		}
		// Toss lists every cancel of a payment (cancels is null when there is none), so the list is
		// authoritative: non-nil even when empty.
		o := gateway.Outcome{Kind: kind, PaymentKey: p.PaymentKey, ApprovedAt: at, Amount: p.TotalAmount.dec(), Currency: cur,
			Refunds: []gateway.Refund{}}
		for _, c := range p.Cancels {
			at, _ := parseTime(c.CanceledAt)
			o.Refunds = append(o.Refunds, gateway.Refund{ID: c.TransactionKey, Amount: c.CancelAmount.dec(), Reason: c.CancelReason,
				At: at, Reference: cancelReference(c.CancelReason)})
			o.Refunded = o.Refunded.Add(c.CancelAmount.dec())
		}
		if p.Status != statusDone && len(p.Cancels) == 0 {
			// No cancels listed: the balance tells what was canceled.
			o.Refunded = p.TotalAmount.dec().Sub(p.BalanceAmount.dec())
			if p.Status == statusCanceled {
				o.Refunded = p.TotalAmount.dec()
			}
		}
		if p.VAT != nil {
			v := p.VAT.dec()
			o.VAT = &v
		}
		return o
	case statusAborted, statusExpired:
		// The approval ended without money moving. ABORTED carries the issuer's failure; EXPIRED (an
		// approval that was never completed) is soft, since nothing is wrong with the card.
		code, msg := p.Status, "payment "+p.Status
		if p.Failure != nil && p.Failure.Code != "" {
			code, msg = p.Failure.Code, p.Failure.Message
		}
		class, _ := Classify(code)
		return gateway.Outcome{Kind: gateway.Declined, PaymentKey: p.PaymentKey, DeclineCode: code, DeclineClass: declineClass(class), Message: msg}
	default:
		// READY, IN_PROGRESS, WAITING_FOR_DEPOSIT or a status this adapter does not know.
		return unknown("payment %s is %s", p.PaymentKey, p.Status)
	}
}

// refused is the outcome of a merchant-side refusal.
func refused(status int, e errorBody) gateway.Outcome {
	return gateway.Outcome{Kind: gateway.Refused, DeclineCode: e.Code,
		Message: fmt.Sprintf("HTTP %d %s: %s", status, e.Code, e.Message)}
}
