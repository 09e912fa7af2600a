package money_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/money"
)

// plain is the grammar Parse documents: an optional minus, digits, and optionally a dot and digits.
var plain = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// FuzzParse checks money.Parse against an independent statement of its rules: it never panics; it accepts
// exactly the plain decimals (at most 40 characters after the sign) whose written decimals fit the
// currency's minor unit and whose integer part the ledger's columns hold; what it accepts formats and
// parses back to the same amount. (The fuzzer found that a 40-digit amount was accepted, formatted to 43
// characters that Parse then refused, and overflowed the database as a 500: hence ErrTooLarge.)
func FuzzParse(f *testing.F) {
	for _, seed := range [][2]string{
		{"9900", "KRW"}, {"9900.00", "KRW"}, {"9900.", "KRW"}, {"12.50", "USD"}, {"12.505", "USD"}, {"12.500", "USD"}, {"0.001", "KWD"}, {"0.0001", "KWD"},
		{"-3", "JPY"}, {"1.5", "JPY"}, {"1e3", "USD"}, {" 1", "USD"}, {"+1", "USD"}, {"1.", "USD"}, {".5", "USD"},
		{"", "USD"}, {"-", "USD"}, {"--1", "USD"}, {"1", "usd"}, {"1", "XXX"}, {"٣", "USD"},
		{strings.Repeat("9", 16), "KRW"}, {strings.Repeat("9", 17), "KRW"}, {"0000000000000000000000001.5", "USD"},
		{strings.Repeat("9", 40), "USD"}, {strings.Repeat("9", 41), "KRW"}, {"0." + strings.Repeat("0", 38) + "1", "EUR"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, s, currency string) {
		v, err := money.Parse(s, currency)
		unit, known := money.MinorUnit(currency)
		if known != nil {
			require.ErrorIs(t, err, money.ErrUnknownCurrency)
			return
		}
		digits := strings.TrimPrefix(s, "-")
		if !plain.MatchString(s) || len(digits) > 40 {
			require.ErrorIs(t, err, money.ErrNotAnAmount, "%q", s)
			return
		}
		_, frac, _ := strings.Cut(digits, ".")
		if len(frac) > int(unit) { // written decimals, trailing zeros too: "9900.00" is not KRW

			require.ErrorIs(t, err, money.ErrTooPrecise, "%q in %s", s, currency)
			return
		}
		intPart, _, _ := strings.Cut(digits, ".")
		if len(strings.TrimLeft(intPart, "0")) > money.MaxIntegerDigits {
			require.ErrorIs(t, err, money.ErrTooLarge, "%q", s)
			return
		}
		require.NoError(t, err, "%q in %s", s, currency)
		require.False(t, errors.Is(err, money.ErrTooPrecise))

		out := money.String(v, currency)
		back, err := money.Parse(out, currency)
		require.NoError(t, err, "%q formatted as %q", s, out)
		require.True(t, back.Equal(v), "%q -> %s -> %s", s, out, back)
		require.True(t, money.Round(v, currency).Equal(v))
		if unit == 0 {
			require.NotContains(t, out, ".")
		} else {
			_, outFrac, ok := strings.Cut(strings.TrimPrefix(out, "-"), ".")
			require.True(t, ok)
			require.Len(t, outFrac, int(unit))
		}
	})
}
