package stripe_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/stripe"
)

var webhookNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const eventBody = `{"id":"evt_1","object":"event","type":"payment_intent.succeeded","created":1748779200,` +
	`"data":{"object":{"id":"pi_1","object":"payment_intent","status":"succeeded","metadata":{"order_id":"ord-7"}}}}`

func webhookAdapter(t *testing.T) *stripe.Adapter {
	t.Helper()
	a, err := stripe.New(stripe.Config{SecretKey: "sk_test_1", WebhookSecret: "whsec_new", Now: func() time.Time { return webhookNow }})
	require.NoError(t, err)
	return a
}

func webhookRequest(body, signature string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewBufferString(body))
	if signature != "" {
		r.Header.Set("Stripe-Signature", signature)
	}
	return r
}

func TestParseWebhookValidSignature(t *testing.T) {
	t.Parallel()
	a := webhookAdapter(t)
	ev, err := a.ParseWebhook(webhookRequest(eventBody, stripe.SignatureHeader("whsec_new", webhookNow.Add(-10*time.Second), []byte(eventBody))))
	require.NoError(t, err)
	require.Equal(t, gateway.Event{
		ID:        "evt_1",
		Kind:      gateway.PaymentStatusChanged,
		OrderID:   "ord-7",
		Status:    "succeeded",
		CreatedAt: time.Unix(1748779200, 0).UTC(),
		Raw:       []byte(eventBody),
	}, ev)
}

func TestParseWebhookAcceptsAnyOfSeveralSignatures(t *testing.T) {
	t.Parallel()
	a := webhookAdapter(t)
	ts := webhookNow.Add(-time.Minute)
	oldSig := stripe.SignatureHeader("whsec_old", ts, []byte(eventBody))
	newSig := stripe.SignatureHeader("whsec_new", ts, []byte(eventBody))
	// While a secret is rolled Stripe signs with both: "t=..,v1=<old>,v1=<new>" (plus legacy v0 noise).
	header := oldSig + ",v0=deadbeef," + newSig[len(fmt.Sprintf("t=%d,", ts.Unix())):]
	_, err := a.ParseWebhook(webhookRequest(eventBody, header))
	require.NoError(t, err)

	_, err = a.ParseWebhook(webhookRequest(eventBody, oldSig))
	require.ErrorIs(t, err, gateway.ErrInvalidSignature, "the old secret alone is not ours")
}

func TestParseWebhookRefuses(t *testing.T) {
	t.Parallel()
	a := webhookAdapter(t)
	sign := func(at time.Time, body string) string { return stripe.SignatureHeader("whsec_new", at, []byte(body)) }
	tampered := bytes.Replace([]byte(eventBody), []byte("ord-7"), []byte("ord-8"), 1)
	cases := []struct {
		name, body, header string
	}{
		{"tampered body", string(tampered), sign(webhookNow, eventBody)},
		{"expired timestamp", eventBody, sign(webhookNow.Add(-301*time.Second), eventBody)},
		{"timestamp too far in the future", eventBody, sign(webhookNow.Add(301*time.Second), eventBody)},
		{"wrong secret", eventBody, stripe.SignatureHeader("whsec_other", webhookNow, []byte(eventBody))},
		{"no header", eventBody, ""},
		{"no v1", eventBody, fmt.Sprintf("t=%d,v0=abc", webhookNow.Unix())},
		{"no timestamp", eventBody, "v1=" + sign(webhookNow, eventBody)[len(fmt.Sprintf("t=%d,v1=", webhookNow.Unix())):]},
	}
	for _, tc := range cases {
		_, err := a.ParseWebhook(webhookRequest(tc.body, tc.header))
		require.ErrorIs(t, err, gateway.ErrInvalidSignature, tc.name)
	}

	// Inside the tolerance both ways is fine: clocks drift.
	for _, d := range []time.Duration{-300 * time.Second, 300 * time.Second} {
		_, err := a.ParseWebhook(webhookRequest(eventBody, sign(webhookNow.Add(d), eventBody)))
		require.NoError(t, err, "offset %s", d)
	}
}

func TestParseWebhookWithoutSecretRefusesEverything(t *testing.T) {
	t.Parallel()
	a, err := stripe.New(stripe.Config{SecretKey: "sk_test_1", Now: func() time.Time { return webhookNow }})
	require.NoError(t, err)
	_, err = a.ParseWebhook(webhookRequest(eventBody, stripe.SignatureHeader("", webhookNow, []byte(eventBody))))
	require.ErrorIs(t, err, gateway.ErrInvalidSignature)
}

func TestParseWebhookEventKinds(t *testing.T) {
	t.Parallel()
	a := webhookAdapter(t)
	cases := []struct {
		typ, object string
		kind        gateway.EventKind
		orderID     string
	}{
		{"payment_intent.payment_failed", `{"object":"payment_intent","status":"requires_payment_method","metadata":{"order_id":"ord-1"}}`, gateway.PaymentStatusChanged, "ord-1"},
		{"charge.refunded", `{"object":"charge","status":"succeeded","metadata":{"order_id":"ord-2"}}`, gateway.PaymentStatusChanged, "ord-2"},
		{"charge.succeeded", `{"object":"charge","status":"succeeded","metadata":{"order_id":"ord-3"}}`, gateway.PaymentStatusChanged, "ord-3"},
		{"charge.dispute.created", `{"object":"dispute","status":"needs_response","metadata":{"order_id":"ord-4"}}`, gateway.OtherEvent, ""},
		{"customer.created", `{"object":"customer","metadata":{"customer_key":"c"}}`, gateway.OtherEvent, ""},
		{"payment_intent.succeeded", `{"object":"payment_intent","status":"succeeded","metadata":{}}`, gateway.OtherEvent, ""},
	}
	for _, tc := range cases {
		body := fmt.Sprintf(`{"id":"evt_%s","type":%q,"created":1748779200,"data":{"object":%s}}`, tc.typ, tc.typ, tc.object)
		ev, err := a.ParseWebhook(webhookRequest(body, stripe.SignatureHeader("whsec_new", webhookNow, []byte(body))))
		require.NoError(t, err, tc.typ)
		require.Equal(t, tc.kind, ev.Kind, tc.typ)
		require.Equal(t, tc.orderID, ev.OrderID, tc.typ)
		require.Equal(t, "evt_"+tc.typ, ev.ID)
	}
}
