package billing

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/money"
)

// finalizedLegs are the legs invoice_finalized posts for a composition (billing/invoices.go): receivable
// +total, revenue −(supply value before money off), discounts +money off net of its tax, tax_owed −tax.
func finalizedLegs(c Composition) map[string]string {
	cur := c.Currency
	return map[string]string{
		"receivable":     money.String(c.Total, cur),
		AccountRevenue:   money.String(c.SupplyValue.Add(c.DiscountSupply).Neg(), cur),
		AccountDiscounts: money.String(c.DiscountSupply, cur),
		AccountTaxOwed:   money.String(c.Tax.Neg(), cur),
	}
}

// The worked examples of docs/money.md, computed by the code that posts them: if this test changes, the
// page changes with it.
func TestMoneyDocWorkedExamples(t *testing.T) {
	t.Parallel()
	compose := func(cur string, credit string, lines ...PriceLine) Composition {
		c, err := Compose(ComposeInput{Currency: cur, Lines: lines, CreditAvailable: d(credit)})
		require.NoError(t, err)
		return c
	}

	// Renewal of a KRW 9,900 VAT-inclusive plan.
	c := compose("KRW", "0", line("9900", vatIncl, nil))
	require.Equal(t, map[string]string{"receivable": "9900", "revenue": "-9000", "discounts": "0", "tax_owed": "-900"}, finalizedLegs(c))
	require.Equal(t, "9900", money.String(c.AmountDue, "KRW"))

	// Proration: KRW 10,000 → 30,000 at half a 31-day month (tax-free plans).
	jan1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	feb1 := jan1.AddDate(0, 1, 0)
	half := jan1.Add(feb1.Sub(jan1) / 2)
	price := func(unit int64) Price {
		return Price{PlanID: "p", Name: "p", UnitAmount: decimal.NewFromInt(unit), Quantity: 1, Currency: "KRW"}
	}
	p, err := Prorate(price(10000), price(30000), jan1, feb1, half)
	require.NoError(t, err)
	c = compose("KRW", "0", prorationLines(p, price(10000), price(30000))...)
	require.Equal(t, []string{"-5000", "15000"}, strs("KRW", c.Lines[0].Total, c.Lines[1].Total))
	require.Equal(t, map[string]string{"receivable": "10000", "revenue": "-10000", "discounts": "0", "tax_owed": "0"}, finalizedLegs(c))
	// And down, 30,000 → 20,000: a negative total, its receivable moved to credit (proration_credit).
	p, err = Prorate(price(30000), price(20000), jan1, feb1, half)
	require.NoError(t, err)
	c = compose("KRW", "0", prorationLines(p, price(30000), price(20000))...)
	require.Equal(t, map[string]string{"receivable": "-5000", "revenue": "5000", "discounts": "0", "tax_owed": "0"}, finalizedLegs(c))
	require.Equal(t, "0", money.String(c.AmountDue, "KRW"))

	// Coupon: 20 % off a KRW 11,000 VAT-inclusive plan, 3,000 of credit held.
	c = compose("KRW", "3000", line("11000", vatIncl, percentOff("20")))
	require.Equal(t, []string{"2200", "800", "8800"}, strs("KRW", c.Discount, c.Tax, c.Total))
	require.Equal(t, map[string]string{"receivable": "8800", "revenue": "-10000", "discounts": "2000", "tax_owed": "-800"}, finalizedLegs(c))
	require.Equal(t, []string{"3000", "5800"}, strs("KRW", c.CreditApplied, c.AmountDue))

	// Tax inclusive at the half: KRW 10,005 → VAT round(909.54…) = 910.
	c = compose("KRW", "0", line("10005", vatIncl, nil))
	require.Equal(t, map[string]string{"receivable": "10005", "revenue": "-9095", "discounts": "0", "tax_owed": "-910"}, finalizedLegs(c))
	// Tax exclusive: USD 19.99 + 10 % = round(1.999) = 2.00 on top.
	c = compose("USD", "0", line("19.99", vatExcl, nil))
	require.Equal(t, map[string]string{"receivable": "21.99", "revenue": "-19.99", "discounts": "0.00", "tax_owed": "-2.00"}, finalizedLegs(c))

	// Credit: 3,000 held, a KRW 9,900 renewal: 3,000 from credit, 6,900 charged.
	c = compose("KRW", "3000", line("9900", vatIncl, nil))
	require.Equal(t, []string{"3000", "6900"}, strs("KRW", c.CreditApplied, c.AmountDue))
}
