package statemachine

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIllegalTransitionErrorNamesStateAndAllowedTriggers(t *testing.T) {
	t.Parallel()

	_, err := FireAttempt(context.Background(), AttemptUnknown, AttemptReverse)
	require.EqualError(t, err,
		`payment_attempt: cannot reverse from state "unknown" (allowed from "unknown": decline, fail, succeed)`)

	var ite *IllegalTransitionError
	require.ErrorAs(t, err, &ite)
	require.Equal(t, &IllegalTransitionError{
		Machine: MachineAttempt,
		State:   "unknown",
		Trigger: "reverse",
		Allowed: []string{"decline", "fail", "succeed"},
	}, ite)
}

func TestIllegalTransitionErrorFromTerminalState(t *testing.T) {
	t.Parallel()

	_, err := FireSubscription(context.Background(), SubscriptionCanceled, SubscriptionResume)
	require.EqualError(t, err,
		`subscription: cannot resume from state "canceled" (no triggers allowed from "canceled")`)

	var ite *IllegalTransitionError
	require.ErrorAs(t, err, &ite)
	require.NotNil(t, ite.Allowed, "REST answers allowed: [] not null")
	require.Empty(t, ite.Allowed)
}

func TestGuardRefusalIsAnIllegalTransitionWithReason(t *testing.T) {
	t.Parallel()

	got, err := FireInvoice(context.Background(), InvoiceOpen, InvoiceVoid, InvoiceFacts{AmountPaidIsZero: false})
	require.Equal(t, InvoiceOpen, got)
	require.ErrorIs(t, err, ErrIllegalTransition)
	require.EqualError(t, err, `invoice: cannot void from state "open": `+
		`money has been collected on this invoice (guard amountPaidIsZero); refund it instead of voiding `+
		`(allowed from "open": mark_uncollectible, pay)`)

	var ite *IllegalTransitionError
	require.ErrorAs(t, err, &ite)
	require.Contains(t, ite.Reason, "amountPaidIsZero")
	require.Equal(t, []string{"mark_uncollectible", "pay"}, ite.Allowed, "void is not allowed with money collected")
}

func TestIllegalTransitionErrorSurvivesWrapping(t *testing.T) {
	t.Parallel()

	_, err := FireInvoice(context.Background(), InvoicePaid, InvoicePay, InvoiceFacts{})
	wrapped := fmt.Errorf("pay invoice inv_123: %w", err)
	require.ErrorIs(t, wrapped, ErrIllegalTransition)
	var ite *IllegalTransitionError
	require.ErrorAs(t, wrapped, &ite)
	require.Equal(t, "paid", ite.State)
}
