package billing

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/money"
)

// Price is what a subscription pays per period: a plan's unit amount times a quantity.
type Price struct {
	PlanID     string
	Name       string
	UnitAmount decimal.Decimal
	Quantity   int
	Currency   string
}

// PerPeriod is the price of one whole period, as a period invoice charges it.
func (p Price) PerPeriod() decimal.Decimal {
	return money.Round(p.UnitAmount.Mul(decimal.NewFromInt(int64(p.Quantity))), p.Currency)
}

// Proration is the money side of changing from one price to another at a moment inside a period.
//
// The rule, and the only one: each line is prorated by whole seconds left in the period and rounded on
// its own to the currency's minor unit, half away from zero (money.Round's rule); the total is the exact
// sum of the rounded lines and is never rounded again. So lines always add up to the total, a full
// period prorates to the full price, and a change to the same price nets to exactly zero.
type Proration struct {
	Currency    string
	PeriodStart time.Time // the period being prorated
	PeriodEnd   time.Time
	At          time.Time // the change takes effect here; lines cover [At, PeriodEnd)
	SecondsLeft int64
	Seconds     int64
	// Credit is the unused part of the old price (<= 0), Debit the remaining part of the new one (>= 0).
	Credit decimal.Decimal
	Debit  decimal.Decimal
}

// Net is what the change costs now: > 0 is charged, < 0 is credited to the customer's balance.
func (p Proration) Net() decimal.Decimal { return p.Credit.Add(p.Debit) }

// Prorate prices a change from old to next at at, inside the period [start, end). Both prices must be in
// one currency. at outside the period is clamped to it (before the start: the whole period is left).
func Prorate(old, next Price, start, end, at time.Time) (Proration, error) {
	if old.Currency != next.Currency {
		return Proration{}, fmt.Errorf("prorate: currency %s differs from %s", next.Currency, old.Currency)
	}
	if !money.ValidCurrency(old.Currency) {
		return Proration{}, fmt.Errorf("prorate: %w: %q", money.ErrUnknownCurrency, old.Currency)
	}
	total := wholeSeconds(end.Sub(start))
	if total <= 0 {
		return Proration{}, fmt.Errorf("prorate: empty period %s – %s", start, end)
	}
	left := min(max(wholeSeconds(end.Sub(at)), 0), total)
	p := Proration{Currency: old.Currency, PeriodStart: start, PeriodEnd: end, At: at, SecondsLeft: left, Seconds: total}
	p.Credit = ProrateAmount(old.PerPeriod(), old.Currency, left, total).Neg()
	p.Debit = ProrateAmount(next.PerPeriod(), next.Currency, left, total)
	return p, nil
}

// ProrateAmount is amount × left / total, rounded half away from zero to currency's minor unit. The
// division is exact (DivRound compares the true remainder), so no intermediate precision can tip a
// value that sits just below a half over it.
func ProrateAmount(amount decimal.Decimal, currency string, left, total int64) decimal.Decimal {
	places, err := money.MinorUnit(currency)
	if err != nil {
		panic("billing.ProrateAmount: " + err.Error())
	}
	return amount.Mul(decimal.NewFromInt(left)).DivRound(decimal.NewFromInt(total), places)
}

// wholeSeconds truncates d to seconds: proration counts whole seconds, so a request's sub-second timing
// never changes a price.
func wholeSeconds(d time.Duration) int64 { return int64(d / time.Second) }

// prorationLines are the invoice lines of p: the credit for the old price and the debit for the new one.
// Zero lines (a free plan, nothing left of the period) are left out; they would say nothing.
func prorationLines(p Proration, old, next Price) []draftLine {
	var lines []draftLine
	on := p.At.UTC().Format("2006-01-02 15:04:05 MST")
	if !p.Credit.IsZero() {
		lines = append(lines, draftLine{Description: fmt.Sprintf("Unused time on %s × %d after %s", old.Name, old.Quantity, on),
			PlanID: old.PlanID, Quantity: old.Quantity, UnitAmount: old.UnitAmount, Amount: p.Credit,
			PeriodStart: p.At, PeriodEnd: p.PeriodEnd, Proration: true,
			PeriodAmount: old.PerPeriod().Neg(), SecondsLeft: p.SecondsLeft, Seconds: p.Seconds})
	}
	if !p.Debit.IsZero() {
		lines = append(lines, draftLine{Description: fmt.Sprintf("Remaining time on %s × %d from %s", next.Name, next.Quantity, on),
			PlanID: next.PlanID, Quantity: next.Quantity, UnitAmount: next.UnitAmount, Amount: p.Debit,
			PeriodStart: p.At, PeriodEnd: p.PeriodEnd, Proration: true,
			PeriodAmount: next.PerPeriod(), SecondsLeft: p.SecondsLeft, Seconds: p.Seconds})
	}
	return lines
}

// linesTotal is the sum of the lines, exactly: the invoice total is this and nothing rounded separately.
func linesTotal(lines []draftLine) decimal.Decimal {
	sum := decimal.Zero
	for _, l := range lines {
		sum = sum.Add(l.Amount)
	}
	return sum
}
