package portal

import (
	"strings"

	"github.com/shopspring/decimal"
)

// Amount formats a decimal amount string for people: "KRW 1,234,500", "USD 12.50". The amount is
// already rounded to the currency (billing stores it so); this only groups the digits.
func Amount(amount, currency string) string {
	neg := strings.HasPrefix(amount, "-")
	amount = strings.TrimPrefix(amount, "-")
	whole, frac, hasFrac := strings.Cut(amount, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	s := b.String()
	if hasFrac {
		s += "." + frac
	}
	if neg {
		s = "-" + s
	}
	return currency + " " + s
}

func isZero(amount string) bool {
	d, err := decimal.NewFromString(amount)
	return err == nil && d.IsZero()
}
