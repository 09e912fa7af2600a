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

// The concrete cases are worked out by hand so the properties below are not the only witness.
func TestProrateByHand(t *testing.T) {
	t.Parallel()
	jan1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	feb1 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC) // 31 days = 2,678,400 s
	half := jan1.Add(2678400 / 2 * time.Second)
	krw := func(unit int64, qty int) Price {
		return Price{UnitAmount: decimal.NewFromInt(unit), Quantity: qty, Currency: "KRW"}
	}
	usd := func(unit string, qty int) Price {
		return Price{UnitAmount: decimal.RequireFromString(unit), Quantity: qty, Currency: "USD"}
	}
	cases := []struct {
		name          string
		old, next     Price
		at            time.Time
		credit, debit string
	}{
		// 10000 -> 30000 at half: -5000 + 15000 = +10000.
		{"upgrade at half", krw(10000, 1), krw(30000, 1), half, "-5000", "15000"},
		// 30000 -> 20000 at half: -15000 + 10000 = -5000 (a credit).
		{"downgrade at half", krw(30000, 1), krw(20000, 1), half, "-15000", "10000"},
		// quantity 1 -> 3 at half: -5000 + 15000.
		{"quantity at half", krw(10000, 1), krw(10000, 3), half, "-5000", "15000"},
		// the whole period left: the full prices.
		{"at the start", krw(9900, 2), krw(14900, 1), jan1, "-19800", "14900"},
		// nothing left.
		{"at the end", krw(9900, 1), krw(14900, 1), feb1, "0", "0"},
		// 1 s left of 2,678,400: 9900/2678400 = 0.0037 -> 0 ; 1e9/2678400 = 373.357 -> 373.
		{"one second left", krw(9900, 1), krw(1000000000, 1), feb1.Add(-time.Second), "0", "373"},
		// USD 9.99 -> 19.99, 10 days of 31 left: 9.99*10/31 = 3.2225.. -> 3.22; 19.99*10/31 = 6.4483.. -> 6.45.
		{"usd ten days left", usd("9.99", 1), usd("19.99", 1), feb1.AddDate(0, 0, -10), "-3.22", "6.45"},
		// A half cent exactly: USD 0.01 at half -> 0.005 rounds away from zero to 0.01 on both lines.
		{"half a cent", usd("0.01", 1), usd("0.01", 1), half, "-0.01", "0.01"},
		// JPY 1 at half: 0.5 -> 1.
		{"half a yen", Price{UnitAmount: decimal.NewFromInt(1), Quantity: 1, Currency: "JPY"}, Price{UnitAmount: decimal.NewFromInt(3), Quantity: 1, Currency: "JPY"}, half, "-1", "2"},
	}
	for _, c := range cases {
		p, err := Prorate(c.old, c.next, jan1, feb1, c.at)
		require.NoError(t, err, c.name)
		require.Equal(t, c.credit, money.String(p.Credit, p.Currency), c.name)
		require.Equal(t, c.debit, money.String(p.Debit, p.Currency), c.name)
	}
}

func TestProrateRefusesMixedCurrenciesAndEmptyPeriods(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err := Prorate(Price{Currency: "KRW", Quantity: 1}, Price{Currency: "USD", Quantity: 1}, now, now.Add(time.Hour), now)
	require.Error(t, err)
	_, err = Prorate(Price{Currency: "KRW", Quantity: 1}, Price{Currency: "KRW", Quantity: 1}, now, now, now)
	require.Error(t, err)
	_, err = Prorate(Price{Currency: "XXX", Quantity: 1}, Price{Currency: "XXX", Quantity: 1}, now, now.Add(time.Hour), now)
	require.Error(t, err)
}

var currencies = []string{"KRW", "USD", "JPY"}

// genPrice draws a plan price with at most the currency's decimals, up to 10^9 minor units, and a quantity.
func genPrice(t *rapid.T, label, currency string) Price {
	places, _ := money.MinorUnit(currency)
	minor := rapid.Int64Range(0, 1_000_000_000).Draw(t, label+"_minor")
	return Price{PlanID: "plan_" + label, Name: label, Currency: currency, UnitAmount: decimal.New(minor, -places),
		Quantity: rapid.IntRange(1, 1000).Draw(t, label+"_qty")}
}

type period struct{ start, end time.Time }

func genPeriod(t *rapid.T) period {
	start := time.Unix(rapid.Int64Range(1_600_000_000, 2_000_000_000).Draw(t, "start"), 0).UTC()
	unit := rapid.SampledFrom([]Interval{Day, Week, Month, Year}).Draw(t, "interval")
	count := rapid.IntRange(1, 12).Draw(t, "count")
	return period{start, PeriodEnd(start, unit, count, 1)}
}

func genAt(t *rapid.T, label string, p period) time.Time {
	return p.start.Add(time.Duration(rapid.Int64Range(0, int64(p.end.Sub(p.start)/time.Second)).Draw(t, label)) * time.Second)
}

// exact is amount*left/total rounded half away from zero to places, computed with big.Rat: an oracle
// independent of decimal's DivRound.
func exact(amount decimal.Decimal, left, total int64, places int32) decimal.Decimal {
	r := amount.Rat()
	r.Mul(r, big.NewRat(left, total))
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil)
	r.Mul(r, new(big.Rat).SetInt(scale))
	// round half away from zero: floor(|r| + 1/2) with the sign restored.
	neg := r.Sign() < 0
	r.Abs(r)
	r.Add(r, big.NewRat(1, 2))
	q := new(big.Int).Quo(r.Num(), r.Denom())
	if neg {
		q.Neg(q)
	}
	return decimal.NewFromBigInt(q, -places)
}

func TestPropertyLinesSumExactlyToTheTotal(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		cur := rapid.SampledFrom(currencies).Draw(t, "currency")
		old, next := genPrice(t, "old", cur), genPrice(t, "new", cur)
		per := genPeriod(t)
		at := genAt(t, "at", per)
		p, err := Prorate(old, next, per.start, per.end, at)
		if err != nil {
			t.Fatal(err)
		}
		lines := prorationLines(p, old, next)
		if !linesTotal(lines).Equal(p.Net()) {
			t.Fatalf("lines sum to %s, net is %s", linesTotal(lines), p.Net())
		}
		// What createFinalizedInvoice stores as the total must be that same sum.
		if total := money.Round(linesTotal(lines), cur); !total.Equal(p.Net()) {
			t.Fatalf("invoice total %s differs from the lines' sum %s", total, p.Net())
		}
		for _, l := range lines {
			if !money.Round(l.Amount, cur).Equal(l.Amount) {
				t.Fatalf("line %s has more decimals than %s allows", l.Amount, cur)
			}
			if !l.Proration || !l.PeriodEnd.Equal(per.end) || !l.PeriodStart.Equal(at) {
				t.Fatalf("line %+v does not cover [at, end) as a proration", l)
			}
		}
		if p.Credit.IsPositive() || p.Debit.IsNegative() {
			t.Fatalf("credit %s must be <= 0 and debit %s >= 0", p.Credit, p.Debit)
		}
		if p.Debit.GreaterThan(next.PerPeriod()) || p.Credit.Neg().GreaterThan(old.PerPeriod()) {
			t.Fatalf("a part (%s, %s) exceeds a whole period's price", p.Credit, p.Debit)
		}
	})
}

func TestPropertyRoundsEachLineHalfAwayFromZero(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		cur := rapid.SampledFrom(currencies).Draw(t, "currency")
		old, next := genPrice(t, "old", cur), genPrice(t, "new", cur)
		per := genPeriod(t)
		p, err := Prorate(old, next, per.start, per.end, genAt(t, "at", per))
		if err != nil {
			t.Fatal(err)
		}
		places, _ := money.MinorUnit(cur)
		if want := exact(next.PerPeriod(), p.SecondsLeft, p.Seconds, places); !p.Debit.Equal(want) {
			t.Fatalf("debit %s, exact rounding gives %s", p.Debit, want)
		}
		if want := exact(old.PerPeriod(), p.SecondsLeft, p.Seconds, places).Neg(); !p.Credit.Equal(want) {
			t.Fatalf("credit %s, exact rounding gives %s", p.Credit, want)
		}
	})
}

func TestPropertySamePriceNetsToZero(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		cur := rapid.SampledFrom(currencies).Draw(t, "currency")
		price := genPrice(t, "price", cur)
		per := genPeriod(t)
		p, err := Prorate(price, price, per.start, per.end, genAt(t, "at", per))
		if err != nil {
			t.Fatal(err)
		}
		if !p.Net().IsZero() {
			t.Fatalf("same price nets to %s (credit %s, debit %s)", p.Net(), p.Credit, p.Debit)
		}
	})
}

func TestPropertyFullPeriodIsTheFullPrice(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		cur := rapid.SampledFrom(currencies).Draw(t, "currency")
		old, next := genPrice(t, "old", cur), genPrice(t, "new", cur)
		per := genPeriod(t)
		p, err := Prorate(old, next, per.start, per.end, per.start)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Debit.Equal(next.PerPeriod()) || !p.Credit.Equal(old.PerPeriod().Neg()) {
			t.Fatalf("full period: credit %s debit %s, want %s and %s", p.Credit, p.Debit, old.PerPeriod().Neg(), next.PerPeriod())
		}
		// And a period's own invoice charges that same amount.
		if !next.PerPeriod().Equal(money.Round(next.UnitAmount.Mul(decimal.NewFromInt(int64(next.Quantity))), cur)) {
			t.Fatalf("per-period price %s is not the period invoice's amount", next.PerPeriod())
		}
	})
}

func TestPropertyMonotonicInTimeLeft(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		cur := rapid.SampledFrom(currencies).Draw(t, "currency")
		old, next := genPrice(t, "old", cur), genPrice(t, "new", cur)
		per := genPeriod(t)
		a, b := genAt(t, "a", per), genAt(t, "b", per)
		if b.Before(a) {
			a, b = b, a
		}
		early, err := Prorate(old, next, per.start, per.end, a)
		if err != nil {
			t.Fatal(err)
		}
		late, err := Prorate(old, next, per.start, per.end, b)
		if err != nil {
			t.Fatal(err)
		}
		// Earlier means more time left: never a smaller debit, never a smaller credit.
		if early.Debit.LessThan(late.Debit) || early.Credit.GreaterThan(late.Credit) {
			t.Fatalf("at %s: (%s, %s); later at %s: (%s, %s)", a, early.Credit, early.Debit, b, late.Credit, late.Debit)
		}
	})
}
