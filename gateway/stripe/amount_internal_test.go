package stripe

import (
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/money"
)

func TestToMinor(t *testing.T) {
	t.Parallel()
	ok := []struct {
		amount, currency string
		want             int64
	}{
		{"12.50", "USD", 1250},
		{"12.5", "usd", 1250},
		{"0.01", "EUR", 1},
		{"9900", "KRW", 9900},
		{"500", "JPY", 500},
		{"5", "ISK", 500},      // Stripe keeps ISK two-decimal
		{"1.230", "KWD", 1230}, // three-decimal, last digit 0
		{"92233720368547758.07", "USD", 9223372036854775807},
	}
	for _, tc := range ok {
		got, err := toMinor(decimal.RequireFromString(tc.amount), tc.currency)
		require.NoError(t, err, "%s %s", tc.amount, tc.currency)
		require.Equal(t, tc.want, got, "%s %s", tc.amount, tc.currency)
		back := fromMinor(got, tc.currency)
		require.True(t, back.Equal(decimal.RequireFromString(tc.amount)), "round trip %s %s gave %s", tc.amount, tc.currency, back)
	}

	bad := []struct {
		amount, currency string
		want             error
	}{
		{"12.505", "USD", ErrAmountNotExact},
		{"9900.5", "KRW", ErrAmountNotExact},
		{"5.5", "ISK", ErrAmountNotExact},
		{"1.235", "KWD", ErrAmountNotExact},
		{"0", "USD", ErrAmountNotExact},
		{"-1", "USD", ErrAmountNotExact},
		{"92233720368547758.08", "USD", ErrAmountNotExact},
		{"10", "XYZ", money.ErrUnknownCurrency},
	}
	for _, tc := range bad {
		_, err := toMinor(decimal.RequireFromString(tc.amount), tc.currency)
		require.ErrorIs(t, err, tc.want, "%s %s", tc.amount, tc.currency)
	}
}
