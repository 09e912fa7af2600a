package toss_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/toss"
)

// wantClasses is the classification, written out independently of the table: adding, removing or
// reclassifying a code without updating this list fails the test.
var wantClasses = map[string]toss.Class{
	"INVALID_STOPPED_CARD":             toss.ClassHard,
	"INVALID_CARD_EXPIRATION":          toss.ClassHard,
	"INVALID_REJECT_CARD":              toss.ClassHard,
	"INVALID_CARD_NUMBER":              toss.ClassHard,
	"NOT_SUPPORTED_CARD_TYPE":          toss.ClassHard,
	"NOT_MATCHES_CUSTOMER_KEY":         toss.ClassHard,
	"INVALID_CARD_LOST_OR_STOLEN":      toss.ClassHard,
	"RESTRICTED_TRANSFER_ACCOUNT":      toss.ClassHard,
	"INVALID_ACCOUNT_INFO_RE_REGISTER": toss.ClassHard,
	"REJECT_TOSSPAY_INVALID_ACCOUNT":   toss.ClassHard,
	"FDS_ERROR":                        toss.ClassHard,
	"INVALID_BILL_KEY_REQUEST":         toss.ClassHard,
	"NOT_FOUND":                        toss.ClassHard,

	"REJECT_CARD_PAYMENT":                 toss.ClassSoft,
	"REJECT_CARD_COMPANY":                 toss.ClassSoft,
	"PROVIDER_ERROR":                      toss.ClassSoft,
	"EXCEED_MAX_DAILY_PAYMENT_COUNT":      toss.ClassSoft,
	"REJECT_ACCOUNT_PAYMENT":              toss.ClassSoft,
	"EXCEED_MAX_PAYMENT_AMOUNT":           toss.ClassSoft,
	"EXCEED_MAX_AMOUNT":                   toss.ClassSoft,
	"EXCEED_MAX_ONE_DAY_AMOUNT":           toss.ClassSoft,
	"EXCEED_MAX_MONTHLY_PAYMENT_AMOUNT":   toss.ClassSoft,
	"EXCEED_MAX_ONE_DAY_WITHDRAW_AMOUNT":  toss.ClassSoft,
	"EXCEED_MAX_ONE_TIME_WITHDRAW_AMOUNT": toss.ClassSoft,
	"EXCEED_MAX_AUTH_COUNT":               toss.ClassSoft,
	"NOT_AVAILABLE_BANK":                  toss.ClassSoft,
	"NOT_AVAILABLE_PAYMENT":               toss.ClassSoft,
	"CARD_PROCESSING_ERROR":               toss.ClassSoft,
	"COMMON_ERROR":                        toss.ClassSoft,

	"FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING": toss.ClassUnknown,
	"FAILED_INTERNAL_SYSTEM_PROCESSING":         toss.ClassUnknown,
	"UNKNOWN_PAYMENT_ERROR":                     toss.ClassUnknown,
	"IDEMPOTENT_REQUEST_PROCESSING":             toss.ClassUnknown,
	"FAILED_CARD_COMPANY_RESPONSE":              toss.ClassUnknown,
	"FAILED_DB_PROCESSING":                      toss.ClassUnknown,

	"DUPLICATED_ORDER_ID":       toss.ClassAlreadyDone,
	"ALREADY_PROCESSED_PAYMENT": toss.ClassAlreadyDone,

	"UNAUTHORIZED_KEY":                                toss.ClassTechnical,
	"INVALID_API_KEY":                                 toss.ClassTechnical,
	"INCORRECT_BASIC_AUTH_FORMAT":                     toss.ClassTechnical,
	"FORBIDDEN_REQUEST":                               toss.ClassTechnical,
	"INVALID_REQUEST":                                 toss.ClassTechnical,
	"BELOW_MINIMUM_AMOUNT":                            toss.ClassTechnical,
	"NOT_FOUND_TERMINAL_ID":                           toss.ClassTechnical,
	"INVALID_UNREGISTERED_SUBMALL":                    toss.ClassTechnical,
	"NOT_REGISTERED_BUSINESS":                         toss.ClassTechnical,
	"INVALID_AUTHORIZE_AUTH":                          toss.ClassTechnical,
	"NOT_SUPPORTED_METHOD":                            toss.ClassTechnical,
	"NOT_ALLOWED_POINT_USE":                           toss.ClassTechnical,
	"EXCEED_MAX_CARD_INSTALLMENT_PLAN":                toss.ClassTechnical,
	"INVALID_CARD_INSTALLMENT_PLAN":                   toss.ClassTechnical,
	"NOT_SUPPORTED_INSTALLMENT_PLAN_CARD_OR_MERCHANT": toss.ClassTechnical,
	"NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN":          toss.ClassTechnical,
}

func TestClassificationTableIsExactlyTheDocumentedOne(t *testing.T) {
	t.Parallel()
	require.Equal(t, wantClasses, toss.Codes())
	c, listed := toss.Classify("SOMETHING_NEW")
	require.False(t, listed)
	require.Equal(t, toss.ClassSoft, c)
}

// codeServer answers every charge with the error code named by the billing key in the path, and every
// lookup with a DONE payment, so each code's effect on a real Charge can be observed.
func codeServer(t *testing.T) *toss.Adapter {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/billing/{code}", func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusBadRequest
		if strings.HasPrefix(r.PathValue("code"), "REJECT_") {
			status = http.StatusForbidden
		}
		if r.PathValue("code") == "IDEMPOTENT_REQUEST_PROCESSING" {
			status = http.StatusConflict
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"code": r.PathValue("code"), "message": "msg " + r.PathValue("code")})
	})
	mux.HandleFunc("GET /v1/payments/orders/{orderId}", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"paymentKey": "pk_original", "orderId": r.PathValue("orderId"), "status": "DONE",
			"totalAmount": 9900, "balanceAmount": 9900, "currency": "KRW", "approvedAt": "2026-01-02T03:04:05+09:00",
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return toss.New(toss.Config{BaseURL: srv.URL, SecretKey: "sk", Timeout: time.Second})
}

func TestEveryTableCodeDrivesChargeOutcome(t *testing.T) {
	t.Parallel()
	a := codeServer(t)
	for code, class := range wantClasses {
		out, err := a.Charge(t.Context(), gateway.ChargeRequest{
			BillingKey: gateway.NewBillingKeyToken(code), CustomerKey: "c", OrderID: "order-" + code,
			IdempotencyKey: "idem-" + code, Amount: decimal.NewFromInt(9900), Currency: "KRW",
		})
		require.NoError(t, err, code)
		switch class {
		case toss.ClassHard, toss.ClassSoft:
			require.Equal(t, gateway.Declined, out.Kind, code)
			require.Equal(t, code, out.DeclineCode)
			require.Equal(t, "msg "+code, out.Message)
			want := gateway.Soft
			if class == toss.ClassHard {
				want = gateway.Hard
			}
			require.Equal(t, want, out.DeclineClass, code)
		case toss.ClassUnknown:
			require.Equal(t, gateway.Unknown, out.Kind, code)
			require.Contains(t, out.Reason, code)
		case toss.ClassTechnical:
			// Refused before processing, for our side's reason: neither the customer's decline nor an
			// unknown that the reconciler would look up and resend forever.
			require.Equal(t, gateway.Refused, out.Kind, code)
			require.Equal(t, code, out.DeclineCode)
			require.Contains(t, out.Message, "msg "+code)
			require.Empty(t, out.DeclineClass, code)
		case toss.ClassAlreadyDone:
			require.Equal(t, gateway.Succeeded, out.Kind, code)
			require.Equal(t, "pk_original", out.PaymentKey)
			require.Equal(t, time.Date(2026, 1, 1, 18, 4, 5, 0, time.UTC), out.ApprovedAt)
		default:
			t.Fatalf("%s: class %q has no expectation", code, class)
		}
	}
}

func TestUnlistedCodeIsSoftDecline(t *testing.T) {
	t.Parallel()
	a := codeServer(t)
	out, err := a.Charge(t.Context(), gateway.ChargeRequest{
		BillingKey: gateway.NewBillingKeyToken("BRAND_NEW_CODE"), CustomerKey: "c", OrderID: "order-new",
		IdempotencyKey: "idem-new", Amount: decimal.NewFromInt(100), Currency: "KRW",
	})
	require.NoError(t, err)
	require.Equal(t, gateway.Declined, out.Kind)
	require.Equal(t, gateway.Soft, out.DeclineClass)
	require.Equal(t, "BRAND_NEW_CODE", out.DeclineCode)
	require.Contains(t, out.Message, "unlisted")
}
