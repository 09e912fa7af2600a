package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	sg "github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/form"

	"github.com/dunningworks/billing/gateway"
)

// Lookup finds the PaymentIntent for an order id with Stripe's search API.
//
// Search is eventually consistent: Stripe indexes new and updated PaymentIntents within about a minute,
// and up to an hour behind during incidents. A NotFound (or a stale status) for an attempt made in the
// last hour is therefore not proof that nothing was charged; within Stripe's 24 h idempotency window,
// resending the Charge with the attempt's IdempotencyKey is the authoritative read.
func (a *Adapter) Lookup(ctx context.Context, orderID string) (gateway.Outcome, error) {
	if orderID == "" {
		return gateway.Outcome{}, fmt.Errorf("%w: order id is required", ErrInvalidRequest)
	}
	ctx, cancel := a.callContext(ctx)
	defer cancel()

	params := &sg.PaymentIntentSearchParams{}
	params.Query = "metadata['order_id']:'" + searchQuote(orderID) + "'"
	params.Limit = sg.Int64(100)
	params.AddExpand("data.latest_charge")
	query := &form.Values{}
	form.AppendTo(query, params)
	// One page through the backend instead of the client's iterator, so the raw body is at hand for the
	// advice codes stripe-go does not model. An order id has one PaymentIntent per attempt, far below 100.
	var page sg.PaymentIntentSearchResult
	err := a.api.CallRaw(http.MethodGet, "/v1/payment_intents/search", a.key, []byte(query.Encode()), &sg.Params{Context: ctx}, &page)
	if err != nil {
		return errorOutcome(err)
	}
	var raw struct {
		Data []rawIntent `json:"data"`
	}
	if page.LastResponse != nil {
		_ = json.Unmarshal(page.LastResponse.RawJSON, &raw)
	}

	var best gateway.Outcome
	var bestCreated int64 = math.MinInt64
	found := false
	for i, pi := range page.Data {
		if pi == nil || pi.Metadata["order_id"] != orderID {
			continue
		}
		advice := ""
		if i < len(raw.Data) {
			advice = raw.Data[i].advice()
		}
		o := intentOutcome(pi, advice)
		if !found || lookupRank(o.Kind) > lookupRank(best.Kind) ||
			(lookupRank(o.Kind) == lookupRank(best.Kind) && pi.Created > bestCreated) {
			best, bestCreated, found = o, pi.Created, true
		}
	}
	if !found {
		return gateway.Outcome{Kind: gateway.NotFound}, nil
	}
	return best, nil
}

// lookupRank orders PaymentIntents of one order: money that moved beats money that may have moved beats
// a decline, so a paid order is never reported as declined because a failed intent came later.
func lookupRank(k gateway.OutcomeKind) int {
	switch k {
	case gateway.Succeeded, gateway.Canceled:
		return 3
	case gateway.Unknown:
		return 2
	default:
		return 1
	}
}

// searchQuote escapes a value for a single-quoted string in Stripe's search query language.
func searchQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}

// refundReasons are the reasons Stripe's refund API accepts; other text goes to metadata only.
var refundReasons = map[string]bool{"duplicate": true, "fraudulent": true, "requested_by_customer": true}

// Cancel refunds a PaymentIntent: all of it when amount is zero, else amount in the payment's currency.
func (a *Adapter) Cancel(ctx context.Context, paymentKey, reason string, amount decimal.Decimal, idempotencyKey string) error {
	if paymentKey == "" || idempotencyKey == "" {
		return fmt.Errorf("%w: payment key and idempotency key are required", ErrInvalidRequest)
	}
	if amount.IsNegative() {
		return fmt.Errorf("%w: refund amount %s is negative", ErrInvalidRequest, amount)
	}
	ctx, cancel := a.callContext(ctx)
	defer cancel()

	params := &sg.RefundCreateParams{PaymentIntent: sg.String(paymentKey)}
	if !amount.IsZero() {
		// Stripe wants minor units, and only the payment knows its currency.
		pi, err := a.client.V1PaymentIntents.Retrieve(ctx, paymentKey, nil)
		if err != nil {
			return requestError("retrieve payment "+paymentKey, err)
		}
		minor, err := toMinor(amount, string(pi.Currency))
		if err != nil {
			return err
		}
		params.Amount = sg.Int64(minor)
	}
	if refundReasons[reason] {
		params.Reason = sg.String(reason)
	}
	// The idempotency key in the refund's metadata is how a lookup tells this refund from one made in
	// Stripe's dashboard.
	params.Metadata = map[string]string{"idempotency_key": idempotencyKey}
	if reason != "" {
		params.Metadata["cancel_reason"] = truncate(reason, 500)
	}
	params.SetIdempotencyKey(idempotencyKey)
	if _, err := a.client.V1Refunds.Create(ctx, params); err != nil {
		var se *sg.Error
		if errors.As(err, &se) && se.HTTPStatusCode >= 400 && se.HTTPStatusCode < 500 &&
			se.HTTPStatusCode != http.StatusTooManyRequests && se.HTTPStatusCode != http.StatusConflict {
			return fmt.Errorf("stripe: refund %s: %w: %w", paymentKey, &gateway.RefundRefusedError{Code: string(se.Code), Message: se.Msg}, err)
		}
		return requestError("refund "+paymentKey, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// requestError wraps a failed call outside Charge/Lookup; a 429 stays a TryLaterError.
func requestError(what string, err error) error {
	var se *sg.Error
	if errors.As(err, &se) && se.HTTPStatusCode == http.StatusTooManyRequests {
		return tryLater(se)
	}
	return fmt.Errorf("stripe: %s: %w", what, err)
}

// Transactions lists the charges created in [from, to). Stripe filters on whole seconds, so both bounds
// are rounded up: a charge at second s is in range exactly when s >= from and s < to.
func (a *Adapter) Transactions(ctx context.Context, from, to time.Time) ([]gateway.Transaction, error) {
	if !from.Before(to) {
		return nil, nil
	}
	ctx, cancel := a.callContext(ctx)
	defer cancel()

	params := &sg.ChargeListParams{
		CreatedRange: &sg.RangeQueryParams{GreaterThanOrEqual: ceilUnix(from), LesserThan: ceilUnix(to)},
	}
	params.Limit = sg.Int64(100)
	var out []gateway.Transaction
	for ch, err := range a.client.V1Charges.List(ctx, params) {
		if err != nil {
			return nil, requestError("list charges", err)
		}
		out = append(out, chargeTransaction(ch))
	}
	return out, nil
}

func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

func chargeTransaction(ch *sg.Charge) gateway.Transaction {
	t := gateway.Transaction{
		TransactionKey: ch.ID,
		OrderID:        ch.Metadata["order_id"],
		Status:         string(ch.Status),
		At:             time.Unix(ch.Created, 0).UTC(),
		Amount:         fromMinor(ch.Amount, string(ch.Currency)),
		Currency:       strings.ToUpper(string(ch.Currency)),
	}
	if ch.PaymentIntent != nil {
		t.PaymentKey = ch.PaymentIntent.ID
	}
	switch {
	case ch.Refunded:
		t.Status = "refunded"
	case ch.AmountRefunded > 0:
		t.Status = "partially_refunded"
	}
	return t
}
