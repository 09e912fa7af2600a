package toss_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/gatewaytest"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/gateway/toss"
)

// fake is a scripted Toss: each test installs the handler it needs and reads what the adapter sent.
type fake struct {
	mu   sync.Mutex
	reqs []seen
}

type seen struct {
	method, path, query string
	header              http.Header
	body                map[string]any
}

func newFake(t *testing.T, h http.HandlerFunc) (*toss.Adapter, *fake, *httptest.Server) {
	t.Helper()
	f := &fake{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		f.mu.Lock()
		f.reqs = append(f.reqs, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		f.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	a := toss.New(toss.Config{BaseURL: srv.URL, SecretKey: "test_sk_123", Name: "toss", Timeout: 200 * time.Millisecond})
	return a, f, srv
}

func (f *fake) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

func reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func chargeReq() gateway.ChargeRequest {
	return gateway.ChargeRequest{
		BillingKey: gateway.NewBillingKeyToken("bk_secret_token"), CustomerKey: "cust-1", OrderID: "order-0001",
		IdempotencyKey: "idem-0001", Amount: decimal.NewFromInt(9900), Currency: "KRW", OrderName: "Pro plan",
	}
}

const donePayment = `{"paymentKey":"pk_1","orderId":"order-0001","status":"DONE","totalAmount":9900,"balanceAmount":9900,"currency":"KRW","approvedAt":"2026-03-01T09:00:00+09:00"}`

func TestChargeSendsTossWireFormat(t *testing.T) {
	t.Parallel()
	a, f, _ := newFake(t, reply(http.StatusOK, donePayment))
	out, err := a.Charge(t.Context(), chargeReq())
	require.NoError(t, err)
	require.Equal(t, gateway.Succeeded, out.Kind)
	require.Equal(t, "pk_1", out.PaymentKey)
	require.Equal(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), out.ApprovedAt)
	require.True(t, out.Amount.Equal(decimal.NewFromInt(9900)))
	require.Equal(t, "KRW", out.Currency)

	r := f.requests()[0]
	require.Equal(t, "POST", r.method)
	require.Equal(t, "/v1/billing/bk_secret_token", r.path)
	require.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("test_sk_123:")), r.header.Get("Authorization"))
	require.Equal(t, "idem-0001", r.header.Get("Idempotency-Key"))
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Equal(t, map[string]any{"customerKey": "cust-1", "amount": float64(9900), "orderId": "order-0001", "orderName": "Pro plan",
		"taxFreeAmount": float64(0)}, r.body)
	require.Nil(t, out.VAT, "no vat in the answer: none reported")
}

// The tax-free part goes out as taxFreeAmount; the VAT Toss computed comes back for billing to check.
func TestChargeSendsTaxFreeAmountAndReadsVAT(t *testing.T) {
	t.Parallel()
	a, f, _ := newFake(t, reply(http.StatusOK, `{"paymentKey":"pk_1","orderId":"order-0001","status":"DONE","totalAmount":16000,"vat":1000,"taxFreeAmount":5000,"suppliedAmount":10000,"approvedAt":"2026-03-01T09:00:00+09:00"}`))
	req := chargeReq()
	req.Amount, req.TaxFreeAmount = decimal.NewFromInt(16000), decimal.NewFromInt(5000)
	out, err := a.Charge(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, float64(5000), f.requests()[0].body["taxFreeAmount"])
	require.NotNil(t, out.VAT)
	require.Equal(t, "1000", out.VAT.String())
}

// Toss billing is KRW only and its charge defines no currency field: a charge in another currency is
// refused without sending anything, and a KRW charge sends only the fields Toss defines.
func TestChargeSendsOnlyTossFieldsAndRefusesOtherCurrencies(t *testing.T) {
	t.Parallel()
	a, f, _ := newFake(t, reply(http.StatusOK, `{"paymentKey":"pk_1","orderId":"order-0001","status":"DONE","totalAmount":9900,"approvedAt":"2026-03-01T09:00:00+09:00"}`))
	require.True(t, a.SupportsCurrency("KRW"))
	require.False(t, a.SupportsCurrency("USD"))
	req := chargeReq()
	req.Amount, req.Currency, req.CustomerEmail = decimal.RequireFromString("12.50"), "USD", "a@example.com"
	out, err := a.Charge(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, gateway.Refused, out.Kind)
	require.Equal(t, gateway.CodeCurrencyNotSupported, out.DeclineCode)
	require.Empty(t, f.requests(), "nothing is sent for a currency Toss does not take")

	req.Amount, req.Currency = decimal.NewFromInt(9900), "KRW"
	out, err = a.Charge(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, gateway.Succeeded, out.Kind)
	body := f.requests()[0].body
	defined := map[string]bool{"customerKey": true, "amount": true, "orderId": true, "orderName": true, "customerEmail": true, "customerName": true,
		"taxFreeAmount": true} // Toss's billing approval defines taxFreeAmount (and taxExemptionAmount)
	for k := range body {
		require.True(t, defined[k], "field %q is not in Toss's billing approval", k)
	}
	require.Equal(t, "a@example.com", body["customerEmail"])
}

// pgsim takes a few more currencies through its extension field; the adapter sends it only to a gateway
// configured with them.
func TestChargeSendsNonKRWCurrencyToAGatewayThatTakesIt(t *testing.T) {
	t.Parallel()
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &got)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"paymentKey":"pk_1","orderId":"order-0001","status":"DONE","totalAmount":12.50,"currency":"USD","approvedAt":"2026-03-01T09:00:00+09:00"}`))
	}))
	t.Cleanup(srv.Close)
	a := toss.New(toss.Config{BaseURL: srv.URL, SecretKey: "test_sk_123", Name: "sim", Currencies: []string{"KRW", "USD"}})
	req := chargeReq()
	req.Amount, req.Currency = decimal.RequireFromString("12.50"), "USD"
	out, err := a.Charge(t.Context(), req)
	require.NoError(t, err)
	require.True(t, out.Amount.Equal(decimal.RequireFromString("12.5")))
	require.Equal(t, "USD", out.Currency)
	require.Equal(t, "USD", got["currency"])
	require.InDelta(t, 12.5, got["amount"], 0)
}

// A rotated or wrong secret key is refused before anything is processed: Refused, with Toss's code.
func TestChargeWithRefusedCredentialsIsRefused(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`{"code":"UNAUTHORIZED_KEY","message":"인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다."}`, `{"code":"SOMETHING_NEW","message":"x"}`} {
		a, _, _ := newFake(t, reply(http.StatusUnauthorized, body))
		out, err := a.Charge(t.Context(), chargeReq())
		require.NoError(t, err)
		require.Equal(t, gateway.Refused, out.Kind, body)
		require.NotEmpty(t, out.DeclineCode)
	}
}

func TestChargeUnknownAnswers(t *testing.T) {
	t.Parallel()
	cases := map[string]http.HandlerFunc{
		"unparseable 200":         reply(http.StatusOK, `{"paymentKey":`),
		"200 for another order":   reply(http.StatusOK, strings.Replace(donePayment, "order-0001", "order-9999", 1)),
		"200 still in progress":   reply(http.StatusOK, `{"paymentKey":"pk_1","orderId":"order-0001","status":"IN_PROGRESS"}`),
		"200 unknown status":      reply(http.StatusOK, `{"paymentKey":"pk_1","orderId":"order-0001","status":"SOMETHING"}`),
		"200 done without key":    reply(http.StatusOK, `{"orderId":"order-0001","status":"DONE","approvedAt":"2026-03-01T09:00:00+09:00"}`),
		"200 done bad approvedAt": reply(http.StatusOK, `{"paymentKey":"pk_1","orderId":"order-0001","status":"DONE","approvedAt":"soon"}`),
		"500 with a hard code":    reply(http.StatusInternalServerError, `{"code":"INVALID_STOPPED_CARD","message":"x"}`),
		"502 html":                reply(http.StatusBadGateway, `<html>bad gateway</html>`),
		"503":                     reply(http.StatusServiceUnavailable, ``),
		"400 without toss error":  reply(http.StatusBadRequest, `<html>nope</html>`),
		"302":                     reply(http.StatusFound, ``),
		"timeout": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
		},
		"connection reset after request": func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, _, _ := newFake(t, h)
			out, err := a.Charge(t.Context(), chargeReq())
			require.NoError(t, err)
			require.Equal(t, gateway.Unknown, out.Kind, "%+v", out)
			require.NotEmpty(t, out.Reason)
			require.NotContains(t, out.Reason, "bk_secret_token", "the billing key must not leak into reasons")
		})
	}
}

func TestChargeAbortedPaymentIsDecline(t *testing.T) {
	t.Parallel()
	a, _, _ := newFake(t, reply(http.StatusOK, `{"paymentKey":"pk_1","orderId":"order-0001","status":"ABORTED","failure":{"code":"INVALID_CARD_EXPIRATION","message":"expired"}}`))
	out, err := a.Charge(t.Context(), chargeReq())
	require.NoError(t, err)
	require.Equal(t, gateway.Declined, out.Kind)
	require.Equal(t, gateway.Hard, out.DeclineClass)
	require.Equal(t, "INVALID_CARD_EXPIRATION", out.DeclineCode)
}

func TestChargeRateLimitedIsTryLater(t *testing.T) {
	t.Parallel()
	a, _, _ := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "7")
		reply(http.StatusTooManyRequests, `{"code":"TOO_MANY_REQUESTS","message":"slow down"}`)(w, nil)
	})
	_, err := a.Charge(t.Context(), chargeReq())
	var tl *gateway.TryLaterError
	require.ErrorAs(t, err, &tl)
	require.ErrorIs(t, err, gateway.ErrTryLater)
	require.Equal(t, 7*time.Second, tl.RetryAfter)
	require.Equal(t, gateway.Name("toss"), tl.Gateway)
}

func TestChargeRetryAfterHTTPDate(t *testing.T) {
	t.Parallel()
	a, _, _ := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(time.Minute).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusTooManyRequests)
	})
	_, err := a.Charge(t.Context(), chargeReq())
	var tl *gateway.TryLaterError
	require.ErrorAs(t, err, &tl)
	require.InDelta(t, time.Minute.Seconds(), tl.RetryAfter.Seconds(), 2)
}

func TestChargeNeverSentIsAnError(t *testing.T) {
	t.Parallel()
	a, f, srv := newFake(t, reply(http.StatusOK, donePayment))
	srv.Close() // connection refused: not one byte can have reached the gateway
	_, err := a.Charge(t.Context(), chargeReq())
	require.ErrorIs(t, err, gateway.ErrTryLater)
	require.Empty(t, f.requests())

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = a.Charge(ctx, chargeReq())
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, gateway.ErrTryLater)
}

func TestChargeInvalidInputIsNotSent(t *testing.T) {
	t.Parallel()
	a, f, _ := newFake(t, reply(http.StatusOK, donePayment))
	req := chargeReq()
	req.Amount = decimal.NewFromInt(-1)
	_, err := a.Charge(t.Context(), req)
	require.ErrorIs(t, err, toss.ErrInvalidRequest)
	require.Empty(t, f.requests())
}

func TestDuplicatedOrderResolvesByLookup(t *testing.T) {
	t.Parallel()
	lookups := map[string]struct {
		status int
		body   string
		want   gateway.OutcomeKind
	}{
		"lookup done":     {200, donePayment, gateway.Succeeded},
		"lookup canceled": {200, strings.Replace(donePayment, `"DONE"`, `"CANCELED"`, 1), gateway.Unknown},
		"lookup fails":    {500, `{"code":"FAILED_INTERNAL_SYSTEM_PROCESSING"}`, gateway.Unknown},
		"lookup missing":  {404, `{"code":"NOT_FOUND_PAYMENT"}`, gateway.Unknown},
	}
	for name, lk := range lookups {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, f, _ := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					reply(lk.status, lk.body)(w, r)
					return
				}
				reply(http.StatusBadRequest, `{"code":"DUPLICATED_ORDER_ID","message":"dup"}`)(w, r)
			})
			out, err := a.Charge(t.Context(), chargeReq())
			require.NoError(t, err)
			require.Equal(t, lk.want, out.Kind, "%+v", out)
			reqs := f.requests()
			require.Len(t, reqs, 2)
			require.Equal(t, "/v1/payments/orders/order-0001", reqs[1].path)
		})
	}
}

func TestLookupMapsPaymentStatuses(t *testing.T) {
	t.Parallel()
	pay := func(status, extra string) string {
		return `{"paymentKey":"pk_1","orderId":"order-0001","status":"` + status + `","totalAmount":9900,"balanceAmount":0,"currency":"KRW","approvedAt":"2026-03-01T09:00:00+09:00"` + extra + `}`
	}
	cases := map[string]struct {
		status int
		body   string
		want   gateway.OutcomeKind
		class  gateway.DeclineClass
	}{
		"done":     {200, pay("DONE", ""), gateway.Succeeded, ""},
		"canceled": {200, pay("CANCELED", ""), gateway.Canceled, ""},
		// Part of the money stayed: the payment succeeded and was partly refunded (Refunded says how much).
		"partial canceled":  {200, pay("PARTIAL_CANCELED", ""), gateway.Succeeded, ""},
		"aborted hard":      {200, pay("ABORTED", `,"failure":{"code":"INVALID_STOPPED_CARD","message":"x"}`), gateway.Declined, gateway.Hard},
		"aborted soft":      {200, pay("ABORTED", `,"failure":{"code":"REJECT_CARD_PAYMENT","message":"x"}`), gateway.Declined, gateway.Soft},
		"expired":           {200, pay("EXPIRED", ""), gateway.Declined, gateway.Soft},
		"in progress":       {200, pay("IN_PROGRESS", ""), gateway.Unknown, ""},
		"ready":             {200, pay("READY", ""), gateway.Unknown, ""},
		"waiting":           {200, pay("WAITING_FOR_DEPOSIT", ""), gateway.Unknown, ""},
		"other order":       {200, strings.Replace(pay("DONE", ""), "order-0001", "x", 1), gateway.Unknown, ""},
		"garbage":           {200, `[`, gateway.Unknown, ""},
		"not found":         {404, `{"code":"NOT_FOUND_PAYMENT","message":"none"}`, gateway.NotFound, ""},
		"bare 404":          {404, `<html>not here</html>`, gateway.Unknown, ""},
		"500":               {500, `{"code":"FAILED_INTERNAL_SYSTEM_PROCESSING"}`, gateway.Unknown, ""},
		"401 misconfigured": {401, `{"code":"UNAUTHORIZED_KEY"}`, gateway.Refused, ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, f, _ := newFake(t, reply(c.status, c.body))
			out, err := a.Lookup(t.Context(), "order-0001")
			require.NoError(t, err)
			require.Equal(t, c.want, out.Kind, "%+v", out)
			require.Equal(t, c.class, out.DeclineClass)
			require.Equal(t, "GET", f.requests()[0].method)
			require.Empty(t, f.requests()[0].header.Get("Idempotency-Key"))
			if c.want == gateway.Canceled {
				require.Equal(t, "pk_1", out.PaymentKey)
				require.True(t, out.Amount.Equal(decimal.NewFromInt(9900)), "canceled keeps the original total")
			}
		})
	}
}

func TestLookupRateLimited(t *testing.T) {
	t.Parallel()
	a, _, _ := newFake(t, reply(http.StatusTooManyRequests, `{}`))
	_, err := a.Lookup(t.Context(), "order-0001")
	require.ErrorIs(t, err, gateway.ErrTryLater)
}

func TestIssueBillingKey(t *testing.T) {
	t.Parallel()
	a, f, _ := newFake(t, reply(http.StatusOK, `{"mId":"m","customerKey":"cust-1","billingKey":"bk_new","card":{"issuerCode":"61","number":"43301234****123*","cardType":"신용","ownerType":"개인"}}`))
	k, err := a.IssueBillingKey(t.Context(), "cust-1", "auth-1")
	require.NoError(t, err)
	require.Equal(t, "bk_new", k.Token.Reveal())
	require.Equal(t, gateway.Card{Brand: "현대", MaskedNumber: "43301234****123*"}, k.Card)

	_, err = a.IssueBillingKey(t.Context(), "cust-1", "auth-1")
	require.NoError(t, err)
	_, err = a.IssueBillingKey(t.Context(), "cust-1", "auth-2")
	require.NoError(t, err)
	reqs := f.requests()
	require.Equal(t, "/v1/billing/authorizations/issue", reqs[0].path)
	require.Equal(t, map[string]any{"authKey": "auth-1", "customerKey": "cust-1"}, reqs[0].body)
	require.NotEmpty(t, reqs[0].header.Get("Idempotency-Key"))
	require.Equal(t, reqs[0].header.Get("Idempotency-Key"), reqs[1].header.Get("Idempotency-Key"), "a resend is the same request")
	require.NotEqual(t, reqs[0].header.Get("Idempotency-Key"), reqs[2].header.Get("Idempotency-Key"))
}

func TestIssueBillingKeyFailures(t *testing.T) {
	t.Parallel()
	const (
		card, request, merchant, retry, tryLater = "card", "request", "merchant", "retry", "try later"
	)
	cases := map[string]struct {
		status int
		body   string
		want   string
	}{
		"card expired":            {400, `{"code":"INVALID_CARD_EXPIRATION","message":"expired"}`, card},
		"issuer refuses":          {403, `{"code":"REJECT_CARD_COMPANY","message":"no"}`, card},
		"auth key refused":        {400, `{"code":"INVALID_BILL_KEY_REQUEST","message":"bad"}`, request},
		"auth key expired":        {400, `{"code":"INVALID_REQUEST","message":"만료된 authKey"}`, request},
		"wrong authentication":    {400, `{"code":"INVALID_AUTHORIZE_AUTH","message":"유효하지 않은 인증 방식입니다."}`, request},
		"unlisted 4xx":            {403, `{"code":"SOMETHING_NEW","message":"no"}`, request},
		"our secret is bad":       {401, `{"code":"UNAUTHORIZED_KEY","message":"no"}`, merchant},
		"our secret is malformed": {400, `{"code":"INVALID_API_KEY","message":"no"}`, merchant},
		"4xx without code":        {400, `oops`, retry},
		"still processing":        {409, `{"code":"IDEMPOTENT_REQUEST_PROCESSING","message":"wait"}`, retry},
		"5xx":                     {500, `{"code":"FAILED_INTERNAL_SYSTEM_PROCESSING"}`, retry},
		"429":                     {429, `{}`, tryLater},
		"200 without key":         {200, `{"customerKey":"cust-1"}`, retry},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, _, _ := newFake(t, reply(c.status, c.body))
			_, err := a.IssueBillingKey(t.Context(), "cust-1", "auth-1")
			require.Error(t, err)
			requireIssueError(t, err, c.want)
		})
	}
}

// requireIssueError checks which of the issue's failure kinds err is, and that it is no other.
func requireIssueError(t *testing.T, err error, want string) {
	t.Helper()
	var de *gateway.DeclineError
	var me *gateway.MerchantError
	isDecline := errors.As(err, &de)
	require.Equal(t, want == "card" || want == "request", isDecline, "%v", err)
	require.Equal(t, isDecline, errors.Is(err, gateway.ErrAuthKeyRejected), "%v", err)
	if isDecline {
		require.Equal(t, want == "card", de.Card, "%v", err)
		require.NotEmpty(t, de.Code)
		if de.Card {
			require.Contains(t, []gateway.DeclineClass{gateway.Hard, gateway.Soft}, de.Class)
		}
	}
	require.Equal(t, want == "merchant", errors.As(err, &me), "%v", err)
	require.Equal(t, want == "merchant", errors.Is(err, gateway.ErrMerchantRefused), "%v", err)
	require.Equal(t, want == "try later", errors.Is(err, gateway.ErrTryLater), "%v", err)
}

// Every code of the classification table has a meaning at issuance, and every meaning is reached: the
// table read in both directions.
func TestIssueRefusalCoversTheWholeTable(t *testing.T) {
	t.Parallel()
	want := map[toss.Class]toss.Refusal{
		toss.ClassHard: toss.RefusedCard, toss.ClassSoft: toss.RefusedCard, toss.ClassTechnical: toss.RefusedMerchant,
		toss.ClassUnknown: toss.NotARefusal, toss.ClassAlreadyDone: toss.RefusedRequest,
	}
	// On an issue these refuse the auth key or the request, whatever they mean on a charge.
	requestCodes := map[string]bool{"INVALID_REQUEST": true, "INVALID_AUTHORIZE_AUTH": true, "INVALID_BILL_KEY_REQUEST": true,
		"NOT_MATCHES_CUSTOMER_KEY": true, "NOT_FOUND": true}
	seen := map[toss.Refusal]bool{}
	for code, class := range toss.Codes() {
		got := toss.IssueRefusal(http.StatusBadRequest, code)
		expect := want[class]
		if requestCodes[code] {
			expect = toss.RefusedRequest
		}
		require.Equal(t, expect, got, code)
		seen[got] = true
		require.Equal(t, toss.RefusedMerchant, toss.IssueRefusal(http.StatusUnauthorized, code), "a 401 is always our credentials: %s", code)
	}
	require.Equal(t, toss.RefusedRequest, toss.IssueRefusal(http.StatusBadRequest, "A_CODE_TOSS_ADDS_LATER"))
	for _, r := range []toss.Refusal{toss.RefusedCard, toss.RefusedRequest, toss.RefusedMerchant, toss.NotARefusal} {
		require.True(t, seen[r], "no code of the table means %q", r)
	}
}

// pgsim answers each refused auth key as Toss does, and the adapter reads every answer as what it is:
// the simulator's table and the adapter's, one against the other.
func TestIssueRefusalsAgainstPGSim(t *testing.T) {
	t.Parallel()
	sim := gatewaytest.StartSim(t, pgsim.Options{Seed: 1}, time.Second)
	kinds := map[string]bool{}
	for _, r := range pgsim.IssueRefusals {
		_, err := sim.Gateway.IssueBillingKey(t.Context(), "cust-"+r.Prefix, r.Prefix+"-k1")
		require.Error(t, err, r.Prefix)
		requireIssueError(t, err, r.Kind)
		var de *gateway.DeclineError
		require.ErrorAs(t, err, &de)
		require.Equal(t, r.Code, de.Code, r.Prefix)
		require.Equal(t, r.Message, de.Message, r.Prefix)
		require.Equal(t, r.Kind, string(toss.IssueRefusal(r.Status, r.Code)), "pgsim's kind is the adapter's reading of %s", r.Code)
		kinds[r.Kind] = true
	}
	require.True(t, kinds["card"] && kinds["request"], "pgsim refuses cards and auth keys")

	// Our side: a wrong secret key is a merchant refusal, an outage is neither the card nor us.
	wrong := toss.New(toss.Config{BaseURL: sim.HTTP.URL, SecretKey: "test_sk_rotated", Name: "sim"})
	_, err := wrong.IssueBillingKey(t.Context(), "cust-1", "ok-1")
	requireIssueError(t, err, "merchant")
	var me *gateway.MerchantError
	require.ErrorAs(t, err, &me)
	require.Equal(t, "UNAUTHORIZED_KEY", me.Code)

	sim.Server.SetFaults(pgsim.Faults{Outage: &pgsim.OutageFault{}})
	_, err = sim.Gateway.IssueBillingKey(t.Context(), "cust-1", "ok-2")
	requireIssueError(t, err, "retry")
	sim.Server.ClearFaults()

	k, err := sim.Gateway.IssueBillingKey(t.Context(), "cust-1", "ok-2")
	require.NoError(t, err)
	require.False(t, k.Token.IsZero())
}

func TestCancel(t *testing.T) {
	t.Parallel()
	a, f, _ := newFake(t, reply(http.StatusOK, `{"status":"CANCELED"}`))
	require.NoError(t, a.Cancel(t.Context(), "pk_1", "duplicate", decimal.Zero, "cancel-1"))
	require.NoError(t, a.Cancel(t.Context(), "pk_1", "partial", decimal.NewFromInt(100), ""))
	require.NoError(t, a.Cancel(t.Context(), "pk_1", "partial", decimal.NewFromInt(100), ""))
	reqs := f.requests()
	require.Equal(t, "/v1/payments/pk_1/cancel", reqs[0].path)
	// The idempotency key rides in the reason, so a lookup of the payment's cancels can tell ours.
	require.Equal(t, map[string]any{"cancelReason": "duplicate [cancel-1]"}, reqs[0].body, "a full cancel sends no amount")
	require.Equal(t, "cancel-1", reqs[0].header.Get("Idempotency-Key"))
	require.Equal(t, float64(100), reqs[1].body["cancelAmount"])
	require.Equal(t, "partial ["+reqs[1].header.Get("Idempotency-Key")+"]", reqs[1].body["cancelReason"])
	require.NotEmpty(t, reqs[1].header.Get("Idempotency-Key"))
	require.Equal(t, reqs[1].header.Get("Idempotency-Key"), reqs[2].header.Get("Idempotency-Key"), "derived keys are deterministic")
}

func TestCancelRefused(t *testing.T) {
	t.Parallel()
	a, _, _ := newFake(t, reply(http.StatusBadRequest, `{"code":"ALREADY_CANCELED_PAYMENT","message":"done already"}`))
	err := a.Cancel(t.Context(), "pk_1", "dup", decimal.Zero, "k")
	var ae *toss.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "ALREADY_CANCELED_PAYMENT", ae.Code)
	require.Equal(t, http.StatusBadRequest, ae.Status)
	require.ErrorIs(t, err, gateway.ErrRefundRefused, "a 4xx is a definite refusal")
}

// A partial cancel's lookup reports the cancels, with the idempotency key of each of ours.
func TestLookupReportsCancels(t *testing.T) {
	t.Parallel()
	a, _, _ := newFake(t, reply(http.StatusOK, `{"paymentKey":"pk_1","orderId":"o-000001","status":"PARTIAL_CANCELED",
		"totalAmount":9900,"balanceAmount":6900,"approvedAt":"2026-03-01T09:00:00+09:00","currency":"KRW","cancels":[
		{"transactionKey":"tx1","cancelAmount":1000,"cancelReason":"goodwill [refund-re_1]","canceledAt":"2026-03-02T09:00:00+09:00"},
		{"transactionKey":"tx2","cancelAmount":2000,"cancelReason":"dashboard","canceledAt":"2026-03-03T09:00:00+09:00"}]}`))
	out, err := a.Lookup(t.Context(), "o-000001")
	require.NoError(t, err)
	require.Equal(t, gateway.Succeeded, out.Kind)
	require.Equal(t, "3000", out.Refunded.String())
	require.Len(t, out.Refunds, 2)
	require.Equal(t, gateway.Refund{ID: "tx1", Amount: decimal.NewFromInt(1000), Reason: "goodwill [refund-re_1]",
		At: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Reference: "refund-re_1"}, out.Refunds[0])
	require.Empty(t, out.Refunds[1].Reference)
}

func TestTransactionsPagesAndFiltersTheWindow(t *testing.T) {
	t.Parallel()
	// Lines on both sides of the window edges; the server ignores the dates, as a wrong guess about
	// Toss's zone would, to prove the adapter keeps exactly [from, to) itself.
	lines := []string{
		`{"transactionKey":"t1","paymentKey":"p1","orderId":"o1","status":"DONE","transactionAt":"2026-03-01T08:59:59+09:00","currency":"KRW","amount":100}`,
		`{"transactionKey":"t2","paymentKey":"p2","orderId":"o2","status":"DONE","transactionAt":"2026-03-01T09:00:00+09:00","currency":"KRW","amount":200}`,
		`{"transactionKey":"t3","paymentKey":"p3","orderId":"o3","status":"CANCELED","transactionAt":"2026-03-01T12:00:00+09:00","amount":300}`,
		`{"transactionKey":"t4","paymentKey":"p4","orderId":"o4","status":"DONE","transactionAt":"2026-03-02T09:00:00+09:00","currency":"KRW","amount":400}`,
		`{"transactionKey":"t5","paymentKey":"p5","orderId":"o5","status":"DONE","transactionAt":"2026-03-02T08:59:59+09:00","currency":"KRW","amount":500}`,
	}
	a, f, _ := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		start := 0
		if after := r.URL.Query().Get("startingAfter"); after != "" {
			for i, l := range lines {
				if strings.Contains(l, `"`+after+`"`) {
					start = i + 1
				}
			}
		}
		end := min(start+2, len(lines))
		reply(200, "["+strings.Join(lines[start:end], ",")+"]")(w, r)
	})
	toss.SetPageSize(a, 2)
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) // 09:00 KST
	txs, err := a.Transactions(t.Context(), from, from.Add(24*time.Hour))
	require.NoError(t, err)
	var orders []string
	for _, tx := range txs {
		orders = append(orders, tx.OrderID)
	}
	require.Equal(t, []string{"o2", "o3", "o5"}, orders)
	require.Equal(t, "KRW", txs[1].Currency, "missing currency defaults to KRW")
	require.True(t, txs[1].Amount.Equal(decimal.NewFromInt(300)))
	require.Equal(t, "CANCELED", txs[1].Status)

	reqs := f.requests()
	require.Len(t, reqs, 3, "pages of 2, 2 and 1")
	require.Contains(t, reqs[0].query, "startDate=2026-02-28T09%3A00%3A00", "KST, widened a day")
	require.Contains(t, reqs[0].query, "endDate=2026-03-03T09%3A00%3A00")
	require.Contains(t, reqs[1].query, "startingAfter=t2")
}

func TestTransactionsErrors(t *testing.T) {
	t.Parallel()
	a, _, _ := newFake(t, reply(http.StatusInternalServerError, `{"code":"FAILED_INTERNAL_SYSTEM_PROCESSING"}`))
	now := time.Now()
	_, err := a.Transactions(t.Context(), now, now.Add(time.Hour))
	var ae *toss.APIError
	require.ErrorAs(t, err, &ae)
	_, err = a.Transactions(t.Context(), now, now)
	require.ErrorIs(t, err, toss.ErrInvalidRequest)
}
