package toss_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/toss"
)

func webhookReq(body string) *http.Request {
	return httptest.NewRequest(http.MethodPost, "/webhooks/toss", strings.NewReader(body))
}

func event(status, createdAt, txKey string) string {
	return `{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"` + createdAt + `","data":{"paymentKey":"pk_1","orderId":"order-0001","status":"` +
		status + `","lastTransactionKey":"` + txKey + `","totalAmount":9900}}`
}

func TestParseWebhookPaymentStatusChanged(t *testing.T) {
	t.Parallel()
	a := toss.New(toss.Config{SecretKey: "sk"})
	body := event("DONE", "2026-03-01T09:00:00.000000", "tx1")
	ev, err := a.ParseWebhook(webhookReq(body))
	require.NoError(t, err)
	require.Equal(t, gateway.PaymentStatusChanged, ev.Kind)
	require.Equal(t, "order-0001", ev.OrderID)
	require.Equal(t, "DONE", ev.Status)
	require.Equal(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), ev.CreatedAt, "offset-less createdAt is KST")
	require.Equal(t, body, string(ev.Raw))
	require.Len(t, ev.ID, 64)

	again, err := a.ParseWebhook(webhookReq(body))
	require.NoError(t, err)
	require.Equal(t, ev.ID, again.ID, "a redelivery dedupes")

	for name, other := range map[string]string{
		"status":      event("CANCELED", "2026-03-01T09:00:00.000000", "tx1"),
		"created at":  event("DONE", "2026-03-01T09:00:01.000000", "tx1"),
		"transaction": event("DONE", "2026-03-01T09:00:00.000000", "tx2"),
	} {
		ev2, err := a.ParseWebhook(webhookReq(other))
		require.NoError(t, err, name)
		require.NotEqual(t, ev.ID, ev2.ID, "a different %s is a different event", name)
	}
}

func TestParseWebhookOtherEvent(t *testing.T) {
	t.Parallel()
	a := toss.New(toss.Config{SecretKey: "sk"})
	ev, err := a.ParseWebhook(webhookReq(`{"eventType":"BILLING_DELETED","createdAt":"2026-03-01T09:00:00+09:00","data":{"billingKey":"x"}}`))
	require.NoError(t, err)
	require.Equal(t, gateway.OtherEvent, ev.Kind)
	require.NotEmpty(t, ev.ID)
	require.Empty(t, ev.OrderID)
}

func TestParseWebhookMalformed(t *testing.T) {
	t.Parallel()
	a := toss.New(toss.Config{SecretKey: "sk"})
	for name, body := range map[string]string{
		"not json":        `{"eventType":`,
		"no event type":   `{"createdAt":"2026-03-01T09:00:00","data":{}}`,
		"no data":         `{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2026-03-01T09:00:00"}`,
		"data not object": `{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2026-03-01T09:00:00","data":"x"}`,
		"no order id":     `{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2026-03-01T09:00:00","data":{"status":"DONE"}}`,
		"no status":       `{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2026-03-01T09:00:00","data":{"orderId":"o"}}`,
		"bad created at":  `{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"yesterday","data":{"orderId":"o","status":"DONE"}}`,
		"oversized":       `{"eventType":"PAYMENT_STATUS_CHANGED","pad":"` + strings.Repeat("x", 1<<20) + `"}`,
	} {
		_, err := a.ParseWebhook(webhookReq(body))
		require.ErrorIs(t, err, toss.ErrMalformedWebhook, name)
	}
}

func TestNameDefaultsToToss(t *testing.T) {
	t.Parallel()
	require.Equal(t, gateway.Name("toss"), toss.New(toss.Config{}).Name())
	require.Equal(t, gateway.Name("sim"), toss.New(toss.Config{Name: "sim"}).Name())
}
