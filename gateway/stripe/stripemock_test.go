package stripe_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/devtools/stripemock"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/stripe"
)

// These tests run against stripe-mock, which rejects any request that does not match Stripe's OpenAPI
// spec, so each passing call proves the request shape.

func TestIssueBillingKeyAgainstStripeMock(t *testing.T) {
	t.Parallel()
	b := setup(t, stripemock.Start(t))

	issued, err := b.adapter.IssueBillingKey(context.Background(), "cust-42", "pm_card_visa")
	require.NoError(t, err)
	require.Regexp(t, `^cus_[A-Za-z0-9]+\|pm_card_visa$`, issued.Token.Reveal())
	require.Equal(t, gateway.Card{Brand: "VISA", MaskedNumber: "**** **** **** 4242"}, issued.Card)

	sent := b.rec.sent()
	require.Len(t, sent, 2)
	require.Equal(t, "/v1/customers", sent[0].Path)
	require.Equal(t, "cust-42", sent[0].Form.Get("metadata[customer_key]"))
	require.NotEmpty(t, sent[0].Header.Get("Idempotency-Key"))
	require.Equal(t, "/v1/payment_methods/pm_card_visa/attach", sent[1].Path)
	require.Regexp(t, `^cus_`, sent[1].Form.Get("customer"))
	require.NotEqual(t, sent[0].Header.Get("Idempotency-Key"), sent[1].Header.Get("Idempotency-Key"))
}

func TestChargeAgainstStripeMock(t *testing.T) {
	t.Parallel()
	b := setup(t, stripemock.Start(t))

	out, err := b.adapter.Charge(context.Background(), gateway.ChargeRequest{
		BillingKey:     gateway.NewBillingKeyToken("cus_123|pm_card_visa"),
		CustomerKey:    "cust-42",
		OrderID:        "ord-1",
		IdempotencyKey: "attempt-1",
		Amount:         decimal.RequireFromString("10.99"),
		Currency:       "USD",
		OrderName:      "Pro plan, June",
	})
	require.NoError(t, err)
	require.Equal(t, gateway.Succeeded, out.Kind, "reason: %s", out.Reason)
	require.Regexp(t, `^pi_`, out.PaymentKey)
	require.True(t, out.Amount.Equal(decimal.RequireFromString("10.99")), out.Amount.String())
	require.Equal(t, "USD", out.Currency)
	require.False(t, out.ApprovedAt.IsZero())

	sent := b.rec.sent()
	require.Len(t, sent, 1)
	f := sent[0].Form
	require.Equal(t, "/v1/payment_intents", sent[0].Path)
	require.Equal(t, "attempt-1", sent[0].Header.Get("Idempotency-Key"))
	require.Equal(t, "1099", f.Get("amount"))
	require.Equal(t, "usd", f.Get("currency"))
	require.Equal(t, "cus_123", f.Get("customer"))
	require.Equal(t, "pm_card_visa", f.Get("payment_method"))
	require.Equal(t, "true", f.Get("confirm"))
	require.Equal(t, "true", f.Get("off_session"))
	require.Equal(t, "ord-1", f.Get("metadata[order_id]"))
	require.Equal(t, "cust-42", f.Get("metadata[customer_key]"))
	require.Equal(t, "Pro plan, June", f.Get("description"))
}

func TestChargeZeroDecimalCurrencyAgainstStripeMock(t *testing.T) {
	t.Parallel()
	b := setup(t, stripemock.Start(t))

	_, err := b.adapter.Charge(context.Background(), gateway.ChargeRequest{
		BillingKey: gateway.NewBillingKeyToken("cus_123|pm_card_visa"), OrderID: "ord-krw", IdempotencyKey: "attempt-krw",
		Amount: decimal.RequireFromString("9900"), Currency: "KRW",
	})
	require.NoError(t, err)
	f := b.rec.sent()[0].Form
	require.Equal(t, "9900", f.Get("amount"))
	require.Equal(t, "krw", f.Get("currency"))
}

func TestLookupAgainstStripeMock(t *testing.T) {
	t.Parallel()
	b := setup(t, stripemock.Start(t))

	out, err := b.adapter.Lookup(context.Background(), stripemock.FixtureOrderID)
	require.NoError(t, err)
	require.Equal(t, gateway.Succeeded, out.Kind, "reason: %s", out.Reason)
	require.Equal(t, stripemock.FixturePaymentIntentID, out.PaymentKey)
	require.True(t, out.Amount.Equal(decimal.RequireFromString("10.99")), out.Amount.String())

	sent := b.rec.sent()
	require.Len(t, sent, 1)
	require.Equal(t, "/v1/payment_intents/search", sent[0].Path)
	require.Equal(t, "metadata['order_id']:'"+stripemock.FixtureOrderID+"'", sent[0].Query.Get("query"))

	// The search answers with intents of another order: the adapter must not take them for this one.
	out, err = b.adapter.Lookup(context.Background(), "ord-o'brien")
	require.NoError(t, err)
	require.Equal(t, gateway.NotFound, out.Kind)
	require.Equal(t, `metadata['order_id']:'ord-o\'brien'`, b.rec.sent()[1].Query.Get("query"))
}

func TestCancelAgainstStripeMock(t *testing.T) {
	t.Parallel()
	b := setup(t, stripemock.Start(t))
	ctx := context.Background()

	require.NoError(t, b.adapter.Cancel(ctx, stripemock.FixturePaymentIntentID, "duplicate", decimal.Zero, "cancel-1"))
	sent := b.rec.sent()
	require.Len(t, sent, 1, "a full refund needs no currency lookup")
	require.Equal(t, "/v1/refunds", sent[0].Path)
	require.Equal(t, stripemock.FixturePaymentIntentID, sent[0].Form.Get("payment_intent"))
	require.Equal(t, "duplicate", sent[0].Form.Get("reason"))
	require.Empty(t, sent[0].Form.Get("amount"))
	require.Equal(t, "cancel-1", sent[0].Header.Get("Idempotency-Key"))

	require.NoError(t, b.adapter.Cancel(ctx, stripemock.FixturePaymentIntentID, "support ticket 7", decimal.RequireFromString("5.00"), "cancel-2"))
	sent = b.rec.sent()
	require.Len(t, sent, 3)
	require.Equal(t, "/v1/payment_intents/"+stripemock.FixturePaymentIntentID, sent[1].Path)
	require.Equal(t, "500", sent[2].Form.Get("amount"))
	require.Empty(t, sent[2].Form.Get("reason"), "free text is not one of Stripe's refund reasons")
	require.Equal(t, "support ticket 7", sent[2].Form.Get("metadata[cancel_reason]"))
}

func TestTransactionsAgainstStripeMock(t *testing.T) {
	t.Parallel()
	b := setup(t, stripemock.Start(t))

	from := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2025, 6, 2, 0, 0, 0, 500, time.UTC)
	txs, err := b.adapter.Transactions(context.Background(), from, to)
	require.NoError(t, err)
	require.NotEmpty(t, txs)
	tx := txs[0]
	require.Equal(t, stripemock.FixtureChargeID, tx.TransactionKey)
	require.Equal(t, stripemock.FixturePaymentIntentID, tx.PaymentKey)
	require.Equal(t, stripemock.FixtureOrderID, tx.OrderID)
	require.Equal(t, "succeeded", tx.Status)
	require.Equal(t, "USD", tx.Currency)
	require.True(t, tx.Amount.Equal(decimal.RequireFromString("10.99")), tx.Amount.String())

	q := b.rec.sent()[0].Query
	require.Equal(t, "/v1/charges", b.rec.sent()[0].Path)
	require.Equal(t, "1748736000", q.Get("created[gte]"))
	require.Equal(t, "1748822401", q.Get("created[lt]"), "a bound inside a second rounds up")
}

func TestDeleteBillingKeyDetachesThePaymentMethodAgainstStripeMock(t *testing.T) {
	t.Parallel()
	b := setup(t, stripemock.Start(t))

	err := b.adapter.DeleteBillingKey(context.Background(), gateway.NewBillingKeyToken("cus_123|pm_card_visa"), "cust-42")
	require.NoError(t, err)
	sent := b.rec.sent()
	require.Len(t, sent, 1)
	require.Equal(t, "POST", sent[0].Method)
	require.Equal(t, "/v1/payment_methods/pm_card_visa/detach", sent[0].Path)

	require.ErrorIs(t, b.adapter.DeleteBillingKey(context.Background(), gateway.NewBillingKeyToken("not-a-key"), ""), stripe.ErrMalformedBillingKey)
}
