package billing

import (
	"math/big"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/dunningworks/billing/money"
)

var (
	vatIncl = &TaxRate{ID: "txr_kr_vat", Percentage: decimal.NewFromInt(10), Inclusive: true}
	vatExcl = &TaxRate{ID: "txr_excl10", Percentage: decimal.NewFromInt(10), Inclusive: false}
	nyExcl  = &TaxRate{ID: "txr_ny", Percentage: decimal.RequireFromString("8.875"), Inclusive: false}
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func line(amount string, rate *TaxRate, disc *Discount) PriceLine {
	return PriceLine{Amount: d(amount), PeriodAmount: d(amount), TaxRate: rate, Discount: disc}
}

func percentOff(p string) *Discount { return &Discount{CouponID: "cpn_pct", PercentOff: d(p)} }
func amountOff(a string) *Discount  { return &Discount{CouponID: "cpn_fix", AmountOff: d(a)} }

// strs renders amounts for readable comparisons.
func strs(cur string, ds ...decimal.Decimal) []string {
	out := make([]string, len(ds))
	for i, x := range ds {
		out[i] = money.String(x, cur)
	}
	return out
}

// Each case is worked out by hand; the properties below are the second witness.
func TestComposeByHand(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		cur      string
		lines    []PriceLine
		credit   string
		discount []string // per line
		tax      []string // per line
		supply   []string // per line
		total    string
		taxTotal string
		due      string
		applied  string
	}{
		{name: "KRW inclusive VAT is round(total / 11)", cur: "KRW", lines: []PriceLine{line("9900", vatIncl, nil)},
			discount: []string{"0"}, tax: []string{"900"}, supply: []string{"9000"}, total: "9900", taxTotal: "900", due: "9900", applied: "0"},
		{name: "inclusive VAT rounds half away from zero: 10,005 / 11 = 909.54", cur: "KRW", lines: []PriceLine{line("10005", vatIncl, nil)},
			discount: []string{"0"}, tax: []string{"910"}, supply: []string{"9095"}, total: "10005", taxTotal: "910", due: "10005", applied: "0"},
		{name: "inclusive VAT below a half rounds down: 10,004 / 11 = 909.45", cur: "KRW", lines: []PriceLine{line("10004", vatIncl, nil)},
			discount: []string{"0"}, tax: []string{"909"}, supply: []string{"9095"}, total: "10004", taxTotal: "909", due: "10004", applied: "0"},
		{name: "VAT is computed on the total and spread: 3 × 5 = 15 → round(15/11) = 1", cur: "KRW",
			lines:    []PriceLine{line("5", vatIncl, nil), line("5", vatIncl, nil), line("5", vatIncl, nil)},
			discount: []string{"0", "0", "0"}, tax: []string{"1", "0", "0"}, supply: []string{"4", "5", "5"}, total: "15", taxTotal: "1", due: "15", applied: "0"},
		{name: "exclusive tax is added on top", cur: "USD", lines: []PriceLine{line("19.99", vatExcl, nil)},
			discount: []string{"0.00"}, tax: []string{"2.00"}, supply: []string{"19.99"}, total: "21.99", taxTotal: "2.00", due: "21.99", applied: "0.00"},
		{name: "exclusive 8.875 % on a multi-line invoice: round(30.00 × 0.08875) = 2.66 spread by largest remainder", cur: "USD",
			lines:    []PriceLine{line("10.00", nyExcl, nil), line("10.00", nyExcl, nil), line("10.00", nyExcl, nil)},
			discount: []string{"0.00", "0.00", "0.00"}, tax: []string{"0.88", "0.89", "0.89"}, supply: []string{"10.00", "10.00", "10.00"},
			total: "32.66", taxTotal: "2.66", due: "32.66", applied: "0.00"},
		{name: "a tax-free line next to a taxed one", cur: "KRW", lines: []PriceLine{line("11000", vatIncl, nil), line("5000", nil, nil)},
			discount: []string{"0", "0"}, tax: []string{"1000", "0"}, supply: []string{"10000", "5000"}, total: "16000", taxTotal: "1000", due: "16000", applied: "0"},
		{name: "20 % off, then VAT on what is left", cur: "KRW", lines: []PriceLine{line("11000", vatIncl, percentOff("20"))},
			discount: []string{"2200"}, tax: []string{"800"}, supply: []string{"8000"}, total: "8800", taxTotal: "800", due: "8800", applied: "0"},
		{name: "percent off rounds per line half away from zero: 15 % of 9.99 = 1.4985", cur: "USD", lines: []PriceLine{line("9.99", nil, percentOff("15"))},
			discount: []string{"1.50"}, tax: []string{"0.00"}, supply: []string{"8.49"}, total: "8.49", taxTotal: "0.00", due: "8.49", applied: "0.00"},
		{name: "fixed 3,000 off split over two lines by their price", cur: "KRW",
			lines:    []PriceLine{line("10000", nil, amountOff("3000")), line("20000", nil, amountOff("3000"))},
			discount: []string{"1000", "2000"}, tax: []string{"0", "0"}, supply: []string{"9000", "18000"}, total: "27000", taxTotal: "0", due: "27000", applied: "0"},
		{name: "a fixed coupon larger than the price makes it free", cur: "KRW", lines: []PriceLine{line("2000", vatIncl, amountOff("5000"))},
			discount: []string{"2000"}, tax: []string{"0"}, supply: []string{"0"}, total: "0", taxTotal: "0", due: "0", applied: "0"},
		{name: "100 % off is free", cur: "USD", lines: []PriceLine{line("49.00", vatExcl, percentOff("100"))},
			discount: []string{"49.00"}, tax: []string{"0.00"}, supply: []string{"0.00"}, total: "0.00", taxTotal: "0.00", due: "0.00", applied: "0.00"},
		{name: "credit is spent before the card", cur: "KRW", lines: []PriceLine{line("9900", vatIncl, nil)}, credit: "4000",
			discount: []string{"0"}, tax: []string{"900"}, supply: []string{"9000"}, total: "9900", taxTotal: "900", due: "5900", applied: "4000"},
		{name: "credit larger than the invoice pays all of it", cur: "KRW", lines: []PriceLine{line("9900", vatIncl, nil)}, credit: "20000",
			discount: []string{"0"}, tax: []string{"900"}, supply: []string{"9000"}, total: "9900", taxTotal: "900", due: "0", applied: "9900"},
		{name: "a negative invoice spends no credit and is due as nothing", cur: "KRW", lines: []PriceLine{line("-5500", vatIncl, nil)}, credit: "1000",
			discount: []string{"0"}, tax: []string{"-500"}, supply: []string{"-5000"}, total: "-5500", taxTotal: "-500", due: "0", applied: "0"},
	}
	for _, c := range cases {
		credit := decimal.Zero
		if c.credit != "" {
			credit = d(c.credit)
		}
		got, err := Compose(ComposeInput{Currency: c.cur, Lines: c.lines, CreditAvailable: credit})
		require.NoError(t, err, c.name)
		var disc, tax, supply []decimal.Decimal
		for _, l := range got.Lines {
			disc, tax, supply = append(disc, l.DiscountAmount), append(tax, l.Tax), append(supply, l.SupplyValue)
		}
		require.Equal(t, c.discount, strs(c.cur, disc...), c.name+": discounts")
		require.Equal(t, c.tax, strs(c.cur, tax...), c.name+": taxes")
		require.Equal(t, c.supply, strs(c.cur, supply...), c.name+": supply values")
		require.Equal(t, []string{c.total, c.taxTotal, c.due, c.applied}, strs(c.cur, got.Total, got.Tax, got.AmountDue, got.CreditApplied), c.name+": total, tax, due, applied")
	}
}

// A change in a discounted period credits what was paid for the unused time and charges the discounted
// price for the rest: the same worked examples as docs/proration.md, with a coupon.
func TestComposeCouponsTimesProration(t *testing.T) {
	t.Parallel()
	jan1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	feb1 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	half := jan1.Add(2678400 / 2 * time.Second)
	krw := func(name string, unit int64) Price {
		return Price{PlanID: name, Name: name, UnitAmount: decimal.NewFromInt(unit), Quantity: 1, Currency: "KRW"}
	}
	cases := []struct {
		name      string
		old, next Price
		coupon    *Discount
		rate      *TaxRate
		lines     []string // line totals
		total     string
		tax       string
	}{
		{name: "20 % off: 10,000 → 30,000 at half", old: krw("a", 10000), next: krw("b", 30000), coupon: percentOff("20"),
			lines: []string{"-4000", "12000"}, total: "8000", tax: "0"},
		{name: "fixed 3,000 off: 10,000 → 30,000 at half; the coupon's unused half comes back with the credit", old: krw("a", 10000), next: krw("b", 30000),
			coupon: amountOff("3000"), lines: []string{"-3500", "13500"}, total: "10000", tax: "0"},
		{name: "20 % off and inclusive VAT", old: krw("a", 11000), next: krw("b", 33000), coupon: percentOff("20"), rate: vatIncl,
			lines: []string{"-4400", "13200"}, total: "8800", tax: "800"},
		{name: "same price nets to zero under any coupon", old: krw("a", 9999), next: krw("b", 9999), coupon: amountOff("1234"), rate: vatIncl,
			lines: []string{"-4383", "4383"}, total: "0", tax: "0"},
	}
	for _, c := range cases {
		p, err := Prorate(c.old, c.next, jan1, feb1, half)
		require.NoError(t, err)
		lines := prorationLines(p, c.old, c.next)
		for i := range lines {
			lines[i].Discount, lines[i].TaxRate = c.coupon, c.rate
		}
		got, err := Compose(ComposeInput{Currency: "KRW", Lines: lines})
		require.NoError(t, err, c.name)
		var totals []decimal.Decimal
		for _, l := range got.Lines {
			totals = append(totals, l.Total)
		}
		require.Equal(t, c.lines, strs("KRW", totals...), c.name)
		require.Equal(t, []string{c.total, c.tax}, strs("KRW", got.Total, got.Tax), c.name)
	}
}

// ratOf is the exact value of a decimal.
func ratOf(x decimal.Decimal) *big.Rat {
	r, _ := new(big.Rat).SetString(x.String())
	return r
}

// roundRat rounds half away from zero to places: the oracle for the group tax.
func roundRat(r *big.Rat, places int32) decimal.Decimal {
	scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil))
	x := new(big.Rat).Mul(r, scale)
	neg := x.Sign() < 0
	x.Abs(x)
	q, m := new(big.Int).QuoRem(x.Num(), x.Denom(), new(big.Int))
	if new(big.Int).Mul(m, big.NewInt(2)).Cmp(x.Denom()) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	return decimal.NewFromBigInt(q, -places)
}

// The properties hold for random invoices: several lines (positive, or a proration's negative and
// positive pair), coupons of both kinds, inclusive and exclusive rates, KRW and USD, any credit.
func TestComposeProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		cur := rapid.SampledFrom([]string{"KRW", "USD", "JPY"}).Draw(t, "currency")
		places, _ := money.MinorUnit(cur)
		rates := []*TaxRate{nil, vatIncl, vatExcl, nyExcl,
			{ID: "txr_r", Percentage: decimal.New(int64(rapid.IntRange(0, 300000).Draw(t, "pct")), -4), Inclusive: rapid.Bool().Draw(t, "incl")}}
		var coupon *Discount
		switch rapid.IntRange(0, 2).Draw(t, "coupon") {
		case 1:
			coupon = &Discount{CouponID: "c", PercentOff: decimal.New(int64(rapid.IntRange(1, 1000000).Draw(t, "off")), -4)}
		case 2:
			coupon = &Discount{CouponID: "c", AmountOff: decimal.New(int64(rapid.IntRange(1, 10000000).Draw(t, "amount_off")), -places)}
		}
		seconds := int64(rapid.IntRange(1, 31*86400).Draw(t, "seconds"))
		n := rapid.IntRange(1, 6).Draw(t, "lines")
		var lines []PriceLine
		for i := 0; i < n; i++ {
			period := decimal.New(int64(rapid.IntRange(0, 50000000).Draw(t, "price")), -places)
			l := PriceLine{Amount: period, PeriodAmount: period, TaxRate: rapid.SampledFrom(rates).Draw(t, "rate")}
			if rapid.Bool().Draw(t, "coupon applies") {
				l.Discount = coupon
			}
			if rapid.Bool().Draw(t, "prorated") {
				left := int64(rapid.IntRange(0, int(seconds)).Draw(t, "left"))
				l.Seconds, l.SecondsLeft = seconds, left
				l.Amount = ProrateAmountPlaces(period, places, left, seconds)
				if rapid.Bool().Draw(t, "credit") {
					l.Amount, l.PeriodAmount = l.Amount.Neg(), l.PeriodAmount.Neg()
				}
			}
			lines = append(lines, l)
		}
		credit := decimal.New(int64(rapid.IntRange(0, 100000000).Draw(t, "credit")), -places)
		c, err := Compose(ComposeInput{Currency: cur, Lines: lines, CreditAvailable: credit})
		if err != nil {
			t.Fatal(err)
		}
		sum := map[string]decimal.Decimal{}
		for _, l := range c.Lines {
			for name, x := range map[string]decimal.Decimal{"discount": l.DiscountAmount, "tax": l.Tax, "supply": l.SupplyValue, "total": l.Total} {
				if !x.Round(places).Equal(x) {
					t.Fatalf("%s %s has more decimals than %s allows", name, x, cur)
				}
			}
			if l.DiscountAmount.Abs().GreaterThan(l.Amount.Abs()) || (l.DiscountAmount.Sign()*l.Amount.Sign() < 0) {
				t.Fatalf("discount %s on a line of %s", l.DiscountAmount, l.Amount)
			}
			if !l.SupplyValue.Add(l.Tax).Equal(l.Total) {
				t.Fatalf("line: supply %s + tax %s != total %s", l.SupplyValue, l.Tax, l.Total)
			}
			want := l.Amount.Sub(l.DiscountAmount)
			if l.TaxRate != nil && !l.TaxRate.Inclusive {
				want = want.Add(l.Tax)
			}
			if !l.Total.Equal(want) {
				t.Fatalf("line total %s, want amount - discount (+ exclusive tax) = %s", l.Total, want)
			}
			sum["subtotal"] = sum["subtotal"].Add(l.Amount)
			sum["discount"] = sum["discount"].Add(l.DiscountAmount)
			sum["tax"] = sum["tax"].Add(l.Tax)
			sum["total"] = sum["total"].Add(l.Total)
		}
		if !sum["subtotal"].Equal(c.Subtotal) || !sum["discount"].Equal(c.Discount) || !sum["tax"].Equal(c.Tax) || !sum["total"].Equal(c.Total) {
			t.Fatalf("lines sum to %v; the invoice says subtotal %s discount %s tax %s total %s", sum, c.Subtotal, c.Discount, c.Tax, c.Total)
		}
		if !c.Subtotal.Sub(c.Discount).Add(c.Tax).Sub(inclusiveTax(c)).Equal(c.Total) || !c.SupplyValue.Add(c.Tax).Equal(c.Total) {
			t.Fatalf("subtotal %s - discount %s + exclusive tax != total %s", c.Subtotal, c.Discount, c.Total)
		}
		// Each rate's tax is its rule applied once to the sum of its lines, rounded exactly.
		for _, tx := range c.Taxes {
			num, den := ratOf(tx.Rate.Percentage), big.NewRat(100, 1)
			if tx.Rate.Inclusive {
				den = new(big.Rat).Add(den, num)
			}
			want := roundRat(new(big.Rat).Quo(new(big.Rat).Mul(ratOf(tx.Base), num), den), places)
			if !want.Equal(tx.Tax) {
				t.Fatalf("rate %s on %s: tax %s, the rule gives %s", tx.Rate.Percentage, tx.Base, tx.Tax, want)
			}
		}
		// The ledger's legs balance: receivable = revenue before money off - money off + tax.
		if !c.SupplyValue.Add(c.DiscountSupply).Sub(c.DiscountSupply).Add(c.Tax).Equal(c.Total) {
			t.Fatal("ledger legs do not balance")
		}
		if c.CreditApplied.IsNegative() || c.CreditApplied.GreaterThan(credit) || c.AmountDue.IsNegative() ||
			(c.Total.IsPositive() && !c.CreditApplied.Add(c.AmountDue).Equal(c.Total)) || (!c.Total.IsPositive() && !c.AmountDue.IsZero()) {
			t.Fatalf("credit %s applied %s due %s on a total of %s", credit, c.CreditApplied, c.AmountDue, c.Total)
		}
	})
}

func inclusiveTax(c Composition) decimal.Decimal {
	sum := decimal.Zero
	for _, l := range c.Lines {
		if l.TaxRate != nil && l.TaxRate.Inclusive {
			sum = sum.Add(l.Tax)
		}
	}
	return sum
}

// A same-price change nets to zero whatever the coupon, the tax and the moment: nothing is charged and
// nothing is credited for a change that changes nothing.
func TestComposeSamePriceChangeNetsToZero(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rapid.Check(t, func(t *rapid.T) {
		cur := rapid.SampledFrom([]string{"KRW", "USD"}).Draw(t, "currency")
		places, _ := money.MinorUnit(cur)
		unit := decimal.New(int64(rapid.IntRange(0, 10000000).Draw(t, "unit")), -places)
		price := Price{PlanID: "p", UnitAmount: unit, Quantity: rapid.IntRange(1, 20).Draw(t, "qty"), Currency: cur}
		end := start.AddDate(0, 1, 0)
		at := start.Add(time.Duration(rapid.Int64Range(0, int64(end.Sub(start)/time.Second)).Draw(t, "at")) * time.Second)
		p, err := Prorate(price, price, start, end, at)
		if err != nil {
			t.Fatal(err)
		}
		coupon := []*Discount{nil, percentOff(decimal.New(int64(rapid.IntRange(1, 10000).Draw(t, "pct")), -2).String()),
			{CouponID: "f", AmountOff: decimal.New(int64(rapid.IntRange(1, 10000000).Draw(t, "off")), -places)}}[rapid.IntRange(0, 2).Draw(t, "coupon")]
		rate := rapid.SampledFrom([]*TaxRate{nil, vatIncl, vatExcl, nyExcl}).Draw(t, "rate")
		lines := prorationLines(p, price, price)
		for i := range lines {
			lines[i].Discount, lines[i].TaxRate = coupon, rate
		}
		c, err := Compose(ComposeInput{Currency: cur, Lines: lines})
		if err != nil {
			t.Fatal(err)
		}
		if !c.Total.IsZero() || !c.Tax.IsZero() {
			t.Fatalf("same price nets to %s (tax %s)", c.Total, c.Tax)
		}
	})
}

func TestComposeRefusesWhatIsNotMoney(t *testing.T) {
	t.Parallel()
	_, err := Compose(ComposeInput{Currency: "KRW", Lines: []PriceLine{line("9.5", nil, nil)}})
	require.ErrorIs(t, err, ErrCompose)
	_, err = Compose(ComposeInput{Currency: "XXX"})
	require.ErrorIs(t, err, ErrCompose)
	_, err = Compose(ComposeInput{Currency: "KRW", Lines: []PriceLine{line("100", nil, &Discount{CouponID: "both", PercentOff: d("1"), AmountOff: d("1")})}})
	require.ErrorIs(t, err, ErrCompose)
	_, err = Compose(ComposeInput{Currency: "KRW", CreditAvailable: d("-1")})
	require.ErrorIs(t, err, ErrCompose)
}
