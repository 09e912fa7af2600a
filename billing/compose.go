package billing

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/money"
)

// TaxRate is a tax applied to invoice lines. Percentage 10 is 10 %. An inclusive rate's prices already
// contain the tax (the Korean norm); an exclusive rate's tax is added on top.
type TaxRate struct {
	ID         string
	Name       string
	Percentage decimal.Decimal
	Inclusive  bool
}

// Discount is a coupon's terms as they price a line: PercentOff (e.g. 20 for 20 %) or AmountOff per
// billing period in the invoice's currency.
type Discount struct {
	CouponID   string
	PercentOff decimal.Decimal
	AmountOff  decimal.Decimal
}

// PriceLine is one priced line before money off and tax: a plan's price for a whole period, or a
// proration's part of one.
type PriceLine struct {
	Description string
	PlanID      string
	Quantity    int
	UnitAmount  decimal.Decimal
	// Amount is the line's price, already rounded to the currency (negative for unused time credited).
	Amount      decimal.Decimal
	PeriodStart time.Time
	PeriodEnd   time.Time
	Proration   bool
	// PeriodAmount is the whole-period price Amount is a part of (signed like Amount); SecondsLeft/Seconds
	// is the part. Both zero mean the line is a whole period. A fixed-amount coupon is prorated by the
	// same fraction, so a change in a discounted period is priced at what was actually paid.
	PeriodAmount decimal.Decimal
	SecondsLeft  int64
	Seconds      int64
	// Discount is the coupon that prices this line (nil: none); TaxRate its tax (nil: tax-free).
	Discount *Discount
	TaxRate  *TaxRate
}

// ComposeInput is everything an invoice's amounts depend on. Nothing here is read from a database:
// Compose is a pure function, shared by every path that creates an invoice.
type ComposeInput struct {
	Currency string
	Lines    []PriceLine
	// CreditAvailable is the customer's credit balance in Currency (>= 0); a positive total spends it.
	CreditAvailable decimal.Decimal
}

// ComposedLine is a line with its money off and tax. Signs follow Amount: Discount is subtracted from
// Amount (so it is negative on a negative line); SupplyValue is the line net of discount and tax; Total
// = SupplyValue + Tax = Amount - Discount (+ Tax when exclusive).
type ComposedLine struct {
	PriceLine
	DiscountAmount decimal.Decimal
	Tax            decimal.Decimal
	SupplyValue    decimal.Decimal
	Total          decimal.Decimal
	// DiscountSupply is the part of DiscountAmount that is supply value (the rest was tax that is not
	// owed): the ledger's discount account records it, so revenue + discount balances the supply.
	DiscountSupply decimal.Decimal
}

// TaxSummary is one tax rate's share of an invoice: Tax computed once on the sum of its lines (Base:
// the tax-inclusive amounts for an inclusive rate, the net amounts for an exclusive one).
type TaxSummary struct {
	Rate TaxRate
	Base decimal.Decimal
	Tax  decimal.Decimal
}

// DiscountSummary is one coupon's money off on an invoice.
type DiscountSummary struct {
	CouponID string
	Amount   decimal.Decimal
}

// Composition is an invoice's amounts. Every sum is exact: the totals are the sums of the lines' rounded
// amounts and are never rounded again.
type Composition struct {
	Currency       string
	Lines          []ComposedLine
	Subtotal       decimal.Decimal // Σ Amount
	Discount       decimal.Decimal // Σ DiscountAmount
	DiscountSupply decimal.Decimal // Σ DiscountSupply
	SupplyValue    decimal.Decimal // Σ SupplyValue: the total excluding tax
	Tax            decimal.Decimal // Σ Tax
	TaxFree        decimal.Decimal // Σ Total of the lines without a tax rate (Toss's taxFreeAmount)
	Total          decimal.Decimal // Σ Total = SupplyValue + Tax
	Taxes          []TaxSummary
	Discounts      []DiscountSummary
	CreditApplied  decimal.Decimal // min(CreditAvailable, Total) when Total > 0
	AmountDue      decimal.Decimal // Total - CreditApplied, never below zero
}

// ErrCompose is wrapped by every error Compose returns; they are programming errors, not bad input.
var ErrCompose = errors.New("compose invoice")

var hundred = decimal.NewFromInt(100)

// Compose prices an invoice: money off per line, then tax per rate, then credit. The rules (docs/invoices.md):
//
//   - A percent coupon takes round(Amount × percent / 100) off each line it prices.
//   - A fixed coupon takes AmountOff off each billing period: split over the lines it prices in proportion
//     to their PeriodAmount (positive and negative lines apart, since they are different periods' prices),
//     capped at those amounts, each share prorated by its line's fraction of the period.
//   - Tax is computed once per rate on the sum of its lines — inclusive: round(Σ × p / (100 + p)), so KRW VAT
//     of an inclusive 11,000 is round(11,000 / 11) = 1,000; exclusive: round(Σ × p / 100) — and then
//     spread over the lines by largest remainder, so the lines add up to it exactly.
//   - round is half away from zero to the currency's minor unit, with an exact division (money.Round's rule).
//   - Credit is spent on a positive total; what is left is the amount due. A negative total (unused time
//     credited) is due as nothing.
func Compose(in ComposeInput) (Composition, error) {
	places, err := money.MinorUnit(in.Currency)
	if err != nil {
		return Composition{}, fmt.Errorf("%w: %w", ErrCompose, err)
	}
	if in.CreditAvailable.IsNegative() {
		return Composition{}, fmt.Errorf("%w: negative credit %s", ErrCompose, in.CreditAvailable)
	}
	c := Composition{Currency: in.Currency, Lines: make([]ComposedLine, len(in.Lines))}
	for i, l := range in.Lines {
		if !l.Amount.Round(places).Equal(l.Amount) {
			return Composition{}, fmt.Errorf("%w: line %d amount %s has more decimals than %s allows", ErrCompose, i, l.Amount, in.Currency)
		}
		if l.Discount != nil && l.Discount.PercentOff.IsPositive() == l.Discount.AmountOff.IsPositive() {
			return Composition{}, fmt.Errorf("%w: line %d: a coupon is either percent or amount off", ErrCompose, i)
		}
		if l.Seconds < 0 || l.SecondsLeft < 0 || l.SecondsLeft > l.Seconds {
			return Composition{}, fmt.Errorf("%w: line %d: %d of %d seconds", ErrCompose, i, l.SecondsLeft, l.Seconds)
		}
		c.Lines[i] = ComposedLine{PriceLine: l}
	}
	if err := applyDiscounts(c.Lines, places); err != nil {
		return Composition{}, err
	}
	c.Taxes = applyTaxes(c.Lines, places)
	for i := range c.Lines {
		l := &c.Lines[i]
		c.Subtotal = c.Subtotal.Add(l.Amount)
		c.Discount = c.Discount.Add(l.DiscountAmount)
		c.DiscountSupply = c.DiscountSupply.Add(l.DiscountSupply)
		c.SupplyValue = c.SupplyValue.Add(l.SupplyValue)
		c.Tax = c.Tax.Add(l.Tax)
		c.Total = c.Total.Add(l.Total)
		if l.TaxRate == nil {
			c.TaxFree = c.TaxFree.Add(l.Total)
		}
		if l.Discount != nil && !l.DiscountAmount.IsZero() {
			j := slices.IndexFunc(c.Discounts, func(d DiscountSummary) bool { return d.CouponID == l.Discount.CouponID })
			if j < 0 {
				c.Discounts = append(c.Discounts, DiscountSummary{CouponID: l.Discount.CouponID})
				j = len(c.Discounts) - 1
			}
			c.Discounts[j].Amount = c.Discounts[j].Amount.Add(l.DiscountAmount)
		}
	}
	if c.Total.IsPositive() {
		c.CreditApplied = decimal.Min(in.CreditAvailable, c.Total)
		c.AmountDue = c.Total.Sub(c.CreditApplied)
	}
	return c, nil
}

// applyDiscounts sets each line's DiscountAmount (same sign as Amount, never larger than it).
func applyDiscounts(lines []ComposedLine, places int32) error {
	type group struct {
		coupon   string
		negative bool
	}
	fixed := map[group][]int{}
	var order []group
	for i := range lines {
		l := &lines[i]
		switch {
		case l.Discount == nil || l.Amount.IsZero():
		case l.Discount.PercentOff.IsPositive():
			l.DiscountAmount = l.Amount.Mul(l.Discount.PercentOff).DivRound(hundred, places)
		default:
			g := group{l.Discount.CouponID, l.Amount.IsNegative()}
			if _, ok := fixed[g]; !ok {
				order = append(order, g)
			}
			fixed[g] = append(fixed[g], i)
		}
	}
	for _, g := range order {
		idx := fixed[g]
		weights := make([]decimal.Decimal, len(idx))
		sum := decimal.Zero
		for k, i := range idx {
			w := lines[i].PeriodAmount.Abs()
			if w.IsZero() && lines[i].Seconds == 0 {
				w = lines[i].Amount.Abs() // a whole period given without its PeriodAmount
			}
			weights[k] = w
			sum = sum.Add(w)
		}
		pool := decimal.Min(lines[idx[0]].Discount.AmountOff, sum)
		shares := allocate(pool, weights, places)
		for k, i := range idx {
			l := &lines[i]
			off := shares[k]
			if l.Seconds > 0 {
				off = ProrateAmountPlaces(off, places, l.SecondsLeft, l.Seconds)
			}
			off = decimal.Min(off, l.Amount.Abs())
			if l.Amount.IsNegative() {
				off = off.Neg()
			}
			l.DiscountAmount = off
		}
	}
	return nil
}

// allocate splits pool (>= 0, whole minor units) over weights in proportion, by largest remainder: the
// shares add up to pool exactly and none exceeds its weight's exact share by a minor unit or more.
func allocate(pool decimal.Decimal, weights []decimal.Decimal, places int32) []decimal.Decimal {
	shares := make([]decimal.Decimal, len(weights))
	sum := decimal.Zero
	for _, w := range weights {
		sum = sum.Add(w)
	}
	if sum.IsZero() || pool.IsZero() {
		for i := range shares {
			shares[i] = decimal.Zero
		}
		return shares
	}
	exact := make([]decimal.Decimal, len(weights))
	given := decimal.Zero
	for i, w := range weights {
		exact[i] = pool.Mul(w).Div(sum)
		shares[i] = exact[i].RoundFloor(places)
		given = given.Add(shares[i])
	}
	distribute(shares, exact, pool.Sub(given), places)
	return shares
}

// distribute hands out diff (a whole number of minor units, either sign) one unit at a time: a positive
// diff to the shares rounded down the most, a negative one to those rounded up the most. Ties go to the
// earlier line, so the result is deterministic.
func distribute(shares, exact []decimal.Decimal, diff decimal.Decimal, places int32) {
	if diff.IsZero() {
		return
	}
	unit := decimal.New(1, -places)
	order := make([]int, len(shares))
	for i := range order {
		order[i] = i
	}
	residual := func(i int) decimal.Decimal { return exact[i].Sub(shares[i]) }
	if diff.IsPositive() {
		slices.SortStableFunc(order, func(a, b int) int { return residual(b).Cmp(residual(a)) })
	} else {
		slices.SortStableFunc(order, func(a, b int) int { return residual(a).Cmp(residual(b)) })
		unit = unit.Neg()
	}
	n := diff.Div(unit).IntPart()
	for k := int64(0); k < n; k++ {
		i := order[int(k)%len(order)]
		shares[i] = shares[i].Add(unit)
	}
}

// applyTaxes computes each rate's tax on the sum of its lines and spreads it over them; it sets every
// line's Tax, SupplyValue, Total and DiscountSupply.
func applyTaxes(lines []ComposedLine, places int32) []TaxSummary {
	var taxes []TaxSummary
	byRate := map[string][]int{}
	for i := range lines {
		l := &lines[i]
		net := l.Amount.Sub(l.DiscountAmount)
		l.SupplyValue, l.Total, l.DiscountSupply = net, net, l.DiscountAmount
		if l.TaxRate == nil {
			continue
		}
		if _, ok := byRate[l.TaxRate.ID]; !ok {
			taxes = append(taxes, TaxSummary{Rate: *l.TaxRate})
		}
		byRate[l.TaxRate.ID] = append(byRate[l.TaxRate.ID], i)
	}
	for t := range taxes {
		rate := taxes[t].Rate
		// tax = base × num / den: inclusive p / (100 + p), exclusive p / 100.
		num, den := rate.Percentage, hundred
		if rate.Inclusive {
			den = hundred.Add(rate.Percentage)
		}
		idx := byRate[rate.ID]
		base := decimal.Zero
		exact := make([]decimal.Decimal, len(idx))
		shares := make([]decimal.Decimal, len(idx))
		given := decimal.Zero
		for k, i := range idx {
			net := lines[i].Total
			base = base.Add(net)
			exact[k] = net.Mul(num).Div(den)
			shares[k] = net.Mul(num).DivRound(den, places)
			given = given.Add(shares[k])
		}
		tax := base.Mul(num).DivRound(den, places)
		distribute(shares, exact, tax.Sub(given), places)
		taxes[t].Base, taxes[t].Tax = base, tax
		for k, i := range idx {
			l := &lines[i]
			l.Tax = shares[k]
			if rate.Inclusive {
				l.SupplyValue = l.Total.Sub(l.Tax)
				// The tax inside the discount was never charged, so it is not supply given away.
				l.DiscountSupply = l.DiscountAmount.Sub(l.DiscountAmount.Mul(num).DivRound(den, places))
			} else {
				l.Total = l.Total.Add(l.Tax)
			}
		}
	}
	slices.SortStableFunc(taxes, func(a, b TaxSummary) int { return cmp.Compare(a.Rate.ID, b.Rate.ID) })
	return taxes
}

// ProrateAmountPlaces is ProrateAmount for a number of decimals rather than a currency.
func ProrateAmountPlaces(amount decimal.Decimal, places int32, left, total int64) decimal.Decimal {
	return amount.Mul(decimal.NewFromInt(left)).DivRound(decimal.NewFromInt(total), places)
}
