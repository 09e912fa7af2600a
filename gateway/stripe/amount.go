package stripe

import (
	"errors"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/money"
)

// ErrAmountNotExact is returned for an amount Stripe cannot represent exactly in its integer minor units,
// or that is not positive. Rounding here would charge a different amount than the invoice says.
var ErrAmountNotExact = errors.New("amount does not convert exactly to stripe minor units")

// stripeExponent overrides the ISO minor unit where Stripe's API differs: ISK is zero-decimal in ISO and
// in practice, but Stripe's API keeps it two-decimal (100 = 1 krona) and requires multiples of 100.
var stripeExponent = map[string]int32{"ISK": 2}

// roundTo lists currencies whose Stripe minor amount must be a multiple of a step: three-decimal
// currencies need their last digit to be 0, ISK needs whole kronur.
var roundTo = map[string]int64{"ISK": 100, "KWD": 10, "BHD": 10, "JOD": 10, "OMR": 10, "TND": 10}

// toMinor converts a decimal amount to Stripe's integer amount in the currency's smallest unit.
func toMinor(amount decimal.Decimal, currency string) (int64, error) {
	cur := strings.ToUpper(currency)
	exp, err := money.MinorUnit(cur)
	if err != nil {
		return 0, err
	}
	if !amount.IsPositive() {
		return 0, fmt.Errorf("%w: %s %s is not positive", ErrAmountNotExact, amount, cur)
	}
	if !amount.Round(exp).Equal(amount) {
		return 0, fmt.Errorf("%w: %s %s has more than %d decimals", ErrAmountNotExact, amount, cur, exp)
	}
	if e, ok := stripeExponent[cur]; ok {
		exp = e
	}
	minor := amount.Shift(exp)
	if !minor.IsInteger() || !minor.BigInt().IsInt64() {
		return 0, fmt.Errorf("%w: %s %s", ErrAmountNotExact, amount, cur)
	}
	v := minor.IntPart()
	if step, ok := roundTo[cur]; ok && v%step != 0 {
		return 0, fmt.Errorf("%w: stripe needs %s amounts in steps of %d minor units, got %d", ErrAmountNotExact, cur, step, v)
	}
	return v, nil
}

// fromMinor converts Stripe's integer amount back to a decimal. Only currencies the service supports are
// ever charged, so the fallback for any other (minor units as they are) is never read as money.
func fromMinor(v int64, currency string) decimal.Decimal {
	cur := strings.ToUpper(currency)
	exp, err := money.MinorUnit(cur)
	if err != nil {
		return decimal.NewFromInt(v)
	}
	if e, ok := stripeExponent[cur]; ok {
		exp = e
	}
	return decimal.New(v, -exp)
}
