// Package money holds amounts as decimals with their currency and knows each currency's minor unit.
//
// Rounding happens here and nowhere else: Round rounds half away from zero to the currency's minor unit
// (KRW 0 decimals, USD 2, ...). Floats never touch money.
package money

import (
	"errors"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// minorUnits is the number of decimals each supported ISO 4217 currency allows.
var minorUnits = map[string]int32{
	"KRW": 0, "JPY": 0, "VND": 0, "CLP": 0, "ISK": 0,
	"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "SGD": 2, "CHF": 2, "CNY": 2, "HKD": 2,
	"KWD": 3, "BHD": 3,
}

// ErrUnknownCurrency is returned for a currency code the service does not support.
var ErrUnknownCurrency = errors.New("unknown currency")

// ErrTooPrecise is returned for an amount with more decimals than its currency allows.
var ErrTooPrecise = errors.New("amount has more decimals than the currency allows")

// ErrNotAnAmount is returned for a string that is not a plain decimal number.
var ErrNotAnAmount = errors.New("not a decimal amount")

// ErrNegative is returned where an amount must not be negative.
var ErrNegative = errors.New("amount must not be negative")

// ErrTooLarge is returned for an amount the ledger cannot hold.
var ErrTooLarge = errors.New("amount is too large")

// MaxIntegerDigits is how many digits an amount may have before its decimal point: every amount column is
// numeric(20, 4), so a larger amount would be refused by the database — after validation, as a 500.
const MaxIntegerDigits = 16

var maxAmount = decimal.New(1, MaxIntegerDigits)

// MinorUnit returns the number of decimals of currency, or ErrUnknownCurrency.
func MinorUnit(currency string) (int32, error) {
	d, ok := minorUnits[currency]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownCurrency, currency)
	}
	return d, nil
}

// ValidCurrency reports whether currency is supported.
func ValidCurrency(currency string) bool {
	_, ok := minorUnits[currency]
	return ok
}

// Round rounds amount to currency's minor unit, half away from zero. Currency must be valid.
func Round(amount decimal.Decimal, currency string) decimal.Decimal {
	d, ok := minorUnits[currency]
	if !ok {
		panic("money.Round: unknown currency " + currency)
	}
	return amount.Round(d)
}

// Parse reads a decimal string ("9900", "12.50") for currency. It rejects exponents, signs other than a
// leading minus, blanks, and more written decimals than the currency allows ("9900.00" in KRW, "1.500"
// in USD), even zeros.
func Parse(s, currency string) (decimal.Decimal, error) {
	d, ok := minorUnits[currency]
	if !ok {
		return decimal.Decimal{}, fmt.Errorf("%w: %q", ErrUnknownCurrency, currency)
	}
	if !plainDecimal(s) {
		return decimal.Decimal{}, fmt.Errorf("%w: %q", ErrNotAnAmount, s)
	}
	v, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("%w: %q", ErrNotAnAmount, s)
	}
	// Written decimals count, not significant ones: API.md refuses "9900.00" in KRW, a client that writes
	// decimals KRW does not have has misunderstood the currency.
	if _, frac, _ := strings.Cut(s, "."); len(frac) > int(d) {
		return decimal.Decimal{}, fmt.Errorf("%w: %s allows %d decimals", ErrTooPrecise, currency, d)
	}
	if v.Abs().GreaterThanOrEqual(maxAmount) {
		return decimal.Decimal{}, fmt.Errorf("%w: at most %d digits before the decimal point", ErrTooLarge, MaxIntegerDigits)
	}
	return v, nil
}

// ParseNonNegative is Parse that also refuses amounts below zero.
func ParseNonNegative(s, currency string) (decimal.Decimal, error) {
	v, err := Parse(s, currency)
	if err != nil {
		return v, err
	}
	if v.IsNegative() {
		return decimal.Decimal{}, ErrNegative
	}
	return v, nil
}

// plainDecimal accepts -?digits(.digits)? and nothing else, so "1e3", " 1", "+1" and "1." are refused.
func plainDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" || len(s) > 40 {
		return false
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || (hasDot && frac == "") {
		return false
	}
	for _, part := range []string{intPart, frac} {
		for _, r := range part {
			if r < '0' || r > '9' {
				return false
			}
		}
	}
	return true
}

// String formats amount with exactly the currency's minor unit of decimals ("9900", "12.50").
func String(amount decimal.Decimal, currency string) string {
	d, ok := minorUnits[currency]
	if !ok {
		return amount.String()
	}
	return amount.StringFixed(d)
}
