package stripe_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/stripe"
)

// fakeStripe answers every request with one canned Stripe response: the gateway boundary, for the
// declines, failures and rate limits stripe-mock cannot produce.
type fakeStripe struct {
	status  int
	body    string
	header  http.Header
	handler http.HandlerFunc // overrides status/body when set
	calls   atomic.Int32
}

func (f *fakeStripe) start(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		if f.handler != nil {
			f.handler(w, r)
			return
		}
		for k, v := range f.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		_, _ = w.Write([]byte(f.body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func chargeReq() gateway.ChargeRequest {
	return gateway.ChargeRequest{
		BillingKey:     gateway.NewBillingKeyToken("cus_1|pm_1"),
		OrderID:        "ord-1",
		IdempotencyKey: "attempt-1",
		Amount:         decimal.RequireFromString("12.50"),
		Currency:       "USD",
	}
}

func TestChargeOutcomes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		status    int
		body      string
		wantKind  gateway.OutcomeKind
		wantCode  string
		wantClass gateway.DeclineClass
	}{
		{
			name: "soft decline", status: 402,
			body:     `{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds.","payment_intent":{"id":"pi_d1","object":"payment_intent","status":"requires_payment_method"}}}`,
			wantKind: gateway.Declined, wantCode: "insufficient_funds", wantClass: gateway.Soft,
		},
		{
			name: "hard decline", status: 402,
			body:     `{"error":{"type":"card_error","code":"card_declined","decline_code":"stolen_card","message":"Your card was declined."}}`,
			wantKind: gateway.Declined, wantCode: "stolen_card", wantClass: gateway.Hard,
		},
		{
			name: "code without decline_code", status: 402,
			body:     `{"error":{"type":"card_error","code":"expired_card","message":"Your card has expired."}}`,
			wantKind: gateway.Declined, wantCode: "expired_card", wantClass: gateway.Hard,
		},
		{
			name: "advice do_not_try_again hardens a soft code", status: 402,
			body:     `{"error":{"type":"card_error","code":"card_declined","decline_code":"generic_decline","advice_code":"do_not_try_again","message":"declined"}}`,
			wantKind: gateway.Declined, wantCode: "generic_decline", wantClass: gateway.Hard,
		},
		{
			name: "advice try_again_later softens a hard code", status: 402,
			body:     `{"error":{"type":"card_error","code":"card_declined","decline_code":"restricted_card","advice_code":"try_again_later","message":"declined"}}`,
			wantKind: gateway.Declined, wantCode: "restricted_card", wantClass: gateway.Soft,
		},
		{
			name: "requires_payment_method intent with advice", status: 200,
			body:     `{"id":"pi_2","object":"payment_intent","status":"requires_payment_method","amount":1250,"currency":"usd","last_payment_error":{"type":"card_error","code":"card_declined","decline_code":"do_not_honor","advice_code":"confirm_card_data","message":"declined"}}`,
			wantKind: gateway.Declined, wantCode: "do_not_honor", wantClass: gateway.Hard,
		},
		{
			name: "requires_action off-session", status: 200,
			body:     `{"id":"pi_3","object":"payment_intent","status":"requires_action","amount":1250,"currency":"usd"}`,
			wantKind: gateway.Declined, wantCode: "authentication_required", wantClass: gateway.Hard,
		},
		{
			name: "saved card deleted", status: 400,
			body:     `{"error":{"type":"invalid_request_error","code":"resource_missing","param":"payment_method","message":"No such PaymentMethod: 'pm_1'"}}`,
			wantKind: gateway.Declined, wantCode: "resource_missing", wantClass: gateway.Hard,
		},
		{
			name: "processing", status: 200,
			body:     `{"id":"pi_4","object":"payment_intent","status":"processing","amount":1250,"currency":"usd"}`,
			wantKind: gateway.Unknown,
		},
		{
			name: "server error", status: 500,
			body:     `{"error":{"type":"api_error","message":"An unknown error occurred"}}`,
			wantKind: gateway.Unknown,
		},
		{
			name: "bad gateway without stripe body", status: 502,
			body:     `<html>bad gateway</html>`,
			wantKind: gateway.Unknown,
		},
		{
			name: "idempotency key in flight", status: 409,
			body:     `{"error":{"type":"invalid_request_error","code":"idempotency_key_in_use","message":"There is currently another in-progress request using this Idempotent Key"}}`,
			wantKind: gateway.Unknown,
		},
		{
			name: "idempotency key reused with other parameters", status: 400,
			body:     `{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters they were first used with."}}`,
			wantKind: gateway.Unknown,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeStripe{status: tc.status, body: tc.body}
			b := setup(t, f.start(t))
			out, err := b.adapter.Charge(context.Background(), chargeReq())
			require.NoError(t, err)
			require.Equal(t, tc.wantKind, out.Kind, "outcome %+v", out)
			require.Equal(t, tc.wantCode, out.DeclineCode)
			require.Equal(t, tc.wantClass, out.DeclineClass)
			if tc.wantKind == gateway.Unknown {
				require.NotEmpty(t, out.Reason)
			}
		})
	}
}

func TestChargeDeclineKeepsPaymentIntentID(t *testing.T) {
	t.Parallel()
	f := &fakeStripe{status: 402, body: `{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"no","payment_intent":{"id":"pi_declined","object":"payment_intent"}}}`}
	b := setup(t, f.start(t))
	out, err := b.adapter.Charge(context.Background(), chargeReq())
	require.NoError(t, err)
	require.Equal(t, "pi_declined", out.PaymentKey)
	require.Equal(t, "no", out.Message)
}

func TestChargeRateLimitedIsTryLater(t *testing.T) {
	t.Parallel()
	f := &fakeStripe{
		status: 429, header: http.Header{"Retry-After": {"3"}},
		body: `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`,
	}
	b := setup(t, f.start(t))
	out, err := b.adapter.Charge(context.Background(), chargeReq())
	require.ErrorIs(t, err, gateway.ErrTryLater)
	var tl *gateway.TryLaterError
	require.ErrorAs(t, err, &tl)
	require.Equal(t, 3*time.Second, tl.RetryAfter)
	require.Equal(t, stripe.Name, tl.Gateway)
	require.Empty(t, out.Kind, "a rate limit is never a decline")
	require.EqualValues(t, 1, f.calls.Load(), "stripe-go must not retry on its own")
}

func TestChargeTimeoutIsUnknown(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	f := &fakeStripe{handler: func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}}
	url := f.start(t)
	t.Cleanup(func() { close(release) }) // runs before the server's Close, which waits for this handler
	b := setup(t, url, func(c *stripe.Config) { c.Timeout = 30 * time.Millisecond })
	out, err := b.adapter.Charge(context.Background(), chargeReq())
	require.NoError(t, err)
	require.Equal(t, gateway.Unknown, out.Kind)
	require.Contains(t, out.Reason, "deadline")
}

func TestChargeConnectionDroppedIsUnknown(t *testing.T) {
	t.Parallel()
	f := &fakeStripe{handler: func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}}
	b := setup(t, f.start(t))
	out, err := b.adapter.Charge(context.Background(), chargeReq())
	require.NoError(t, err)
	require.Equal(t, gateway.Unknown, out.Kind)
	require.EqualValues(t, 1, f.calls.Load())
}

// A refusal of our request or our key is Refused, never a decline and never Unknown: resending the same
// request cannot succeed, so the attempt must not enter the lookup-and-resend loop.
func TestChargeRejectedRequestIsRefused(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		status int
		body   string
		code   string
	}{
		"bad request":   {400, `{"error":{"type":"invalid_request_error","code":"amount_too_small","param":"amount","message":"Amount must be at least $0.50 usd"}}`, "amount_too_small"},
		"rotated key":   {401, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****"}}`, "invalid_request_error"},
		"no permission": {403, `{"error":{"type":"invalid_request_error","code":"secret_key_required","message":"This API call cannot be made with a publishable API key."}}`, "secret_key_required"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := &fakeStripe{status: c.status, body: c.body}
			b := setup(t, f.start(t))
			out, err := b.adapter.Charge(context.Background(), chargeReq())
			require.NoError(t, err)
			require.Equal(t, gateway.Refused, out.Kind, "%+v", out)
			require.Equal(t, c.code, out.DeclineCode)
			require.Contains(t, out.Message, stripe.ErrRequestRejected.Error())
		})
	}
}

func TestChargeRefusesBadInputWithoutCallingStripe(t *testing.T) {
	t.Parallel()
	f := &fakeStripe{status: 500, body: `{}`}
	b := setup(t, f.start(t))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	cases := []struct {
		name   string
		ctx    context.Context
		mutate func(*gateway.ChargeRequest)
		want   error
	}{
		{"malformed billing key", context.Background(), func(r *gateway.ChargeRequest) { r.BillingKey = gateway.NewBillingKeyToken("cus_1") }, stripe.ErrMalformedBillingKey},
		{"fraction of a cent", context.Background(), func(r *gateway.ChargeRequest) { r.Amount = decimal.RequireFromString("12.505") }, stripe.ErrAmountNotExact},
		{"zero amount", context.Background(), func(r *gateway.ChargeRequest) { r.Amount = decimal.Zero }, stripe.ErrAmountNotExact},
		{"no idempotency key", context.Background(), func(r *gateway.ChargeRequest) { r.IdempotencyKey = "" }, stripe.ErrInvalidRequest},
		{"canceled before sending", canceled, func(*gateway.ChargeRequest) {}, context.Canceled},
	}
	for _, tc := range cases {
		req := chargeReq()
		tc.mutate(&req)
		_, err := b.adapter.Charge(tc.ctx, req)
		require.ErrorIs(t, err, tc.want, tc.name)
	}
	require.Zero(t, f.calls.Load())
}

func TestLookupPrefersTheIntentThatCollected(t *testing.T) {
	t.Parallel()
	f := &fakeStripe{status: 200, body: `{"object":"search_result","has_more":false,"data":[
		{"id":"pi_old","object":"payment_intent","status":"succeeded","amount":1250,"amount_received":1250,"currency":"usd","created":1700000000,"metadata":{"order_id":"ord-1"},
		 "latest_charge":{"id":"ch_1","object":"charge","created":1700000005,"refunded":false}},
		{"id":"pi_new","object":"payment_intent","status":"requires_payment_method","amount":1250,"currency":"usd","created":1700000100,"metadata":{"order_id":"ord-1"},
		 "last_payment_error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds"}}]}`}
	b := setup(t, f.start(t))
	out, err := b.adapter.Lookup(context.Background(), "ord-1")
	require.NoError(t, err)
	require.Equal(t, gateway.Succeeded, out.Kind)
	require.Equal(t, "pi_old", out.PaymentKey)
	require.Equal(t, time.Unix(1700000005, 0).UTC(), out.ApprovedAt)
	require.True(t, out.Amount.Equal(decimal.RequireFromString("12.50")))
}

func TestLookupOutcomes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		status   int
		body     string
		wantKind gateway.OutcomeKind
		wantErr  error
	}{
		{"refunded", 200, `{"object":"search_result","data":[{"id":"pi_1","object":"payment_intent","status":"succeeded","amount":1250,"currency":"usd","metadata":{"order_id":"ord-1"},"latest_charge":{"id":"ch_1","object":"charge","created":1700000005,"refunded":true}}]}`, gateway.Canceled, nil},
		{"declined with advice", 200, `{"object":"search_result","data":[{"id":"pi_1","object":"payment_intent","status":"requires_payment_method","amount":1250,"currency":"usd","metadata":{"order_id":"ord-1"},"last_payment_error":{"type":"card_error","decline_code":"generic_decline","advice_code":"do_not_try_again"}}]}`, gateway.Declined, nil},
		{"none", 200, `{"object":"search_result","data":[]}`, gateway.NotFound, nil},
		{"server error", 503, `{"error":{"type":"api_error","message":"unavailable"}}`, gateway.Unknown, nil},
		{"rate limited", 429, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"slow down"}}`, "", gateway.ErrTryLater},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeStripe{status: tc.status, body: tc.body}
			b := setup(t, f.start(t))
			out, err := b.adapter.Lookup(context.Background(), "ord-1")
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantKind, out.Kind, "%+v", out)
			if tc.name == "declined with advice" {
				require.Equal(t, gateway.Hard, out.DeclineClass)
			}
		})
	}
}

func TestIssueBillingKeyRefusedCardIsDeclineError(t *testing.T) {
	t.Parallel()
	f := &fakeStripe{handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/customers" {
			_, _ = w.Write([]byte(`{"id":"cus_9","object":"customer"}`))
			return
		}
		w.WriteHeader(402)
		_, _ = w.Write([]byte(`{"error":{"type":"card_error","code":"card_declined","decline_code":"lost_card","message":"Your card was declined."}}`))
	}}
	b := setup(t, f.start(t))
	_, err := b.adapter.IssueBillingKey(context.Background(), "cust-1", "pm_card_lost")
	require.ErrorIs(t, err, gateway.ErrAuthKeyRejected)
	var de *gateway.DeclineError
	require.True(t, errors.As(err, &de))
	require.Equal(t, "lost_card", de.Code)
}

func TestCancelRateLimitedIsTryLater(t *testing.T) {
	t.Parallel()
	f := &fakeStripe{status: 429, body: `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"slow down"}}`}
	b := setup(t, f.start(t))
	err := b.adapter.Cancel(context.Background(), "pi_1", "duplicate", decimal.Zero, "cancel-1")
	require.ErrorIs(t, err, gateway.ErrTryLater)
}

// The whole issuance table: a declined card (402 at our API), a refused PaymentMethod (422), our key
// refused (502 after an alert), throttling (503) and Stripe's own failures (502, retry the same input).
func TestIssueBillingKeyFailureTable(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		status int
		body   string
		want   string
		code   string
	}{
		"card declined, hard":        {402, `{"error":{"type":"card_error","code":"card_declined","decline_code":"stolen_card","message":"Your card was declined."}}`, "card", "stolen_card"},
		"card declined, soft":        {402, `{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds."}}`, "card", "insufficient_funds"},
		"expired card":               {402, `{"error":{"type":"card_error","code":"expired_card","message":"Your card has expired."}}`, "card", "expired_card"},
		"no such payment method":     {404, `{"error":{"type":"invalid_request_error","code":"resource_missing","param":"payment_method","message":"No such PaymentMethod: 'pm_x'"}}`, "request", "resource_missing"},
		"attached to other customer": {400, `{"error":{"type":"invalid_request_error","code":"payment_method_unexpected_state","message":"already attached"}}`, "request", "payment_method_unexpected_state"},
		"rotated secret key":         {401, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****"}}`, "merchant", "invalid_request_error"},
		"restricted key":             {403, `{"error":{"type":"invalid_request_error","code":"secret_key_required","message":"restricted"}}`, "merchant", "secret_key_required"},
		"rate limited":               {429, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"slow down"}}`, "try later", ""},
		"stripe down":                {500, `{"error":{"type":"api_error","message":"oops"}}`, "retry", ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := &fakeStripe{handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if r.URL.Path == "/v1/customers" {
					_, _ = w.Write([]byte(`{"id":"cus_9","object":"customer"}`))
					return
				}
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
			}}
			b := setup(t, f.start(t))
			_, err := b.adapter.IssueBillingKey(context.Background(), "cust-1", "pm_1")
			require.Error(t, err)
			var de *gateway.DeclineError
			var me *gateway.MerchantError
			require.Equal(t, c.want == "card" || c.want == "request", errors.As(err, &de), "%v", err)
			require.Equal(t, c.want == "merchant", errors.As(err, &me), "%v", err)
			require.Equal(t, c.want == "try later", errors.Is(err, gateway.ErrTryLater), "%v", err)
			switch c.want {
			case "card", "request":
				require.Equal(t, c.want == "card", de.Card)
				require.Equal(t, c.code, de.Code)
			case "merchant":
				require.Equal(t, c.code, me.Code)
				require.ErrorIs(t, err, gateway.ErrMerchantRefused)
			}
		})
	}
}
