package billing

import "time"

// Interval is a plan's billing interval unit.
type Interval string

const (
	Day   Interval = "day"
	Week  Interval = "week"
	Month Interval = "month"
	Year  Interval = "year"
)

// Valid reports whether i is a known interval.
func (i Interval) Valid() bool {
	switch i {
	case Day, Week, Month, Year:
		return true
	}
	return false
}

// PeriodEnd returns the end of the n-th period (n >= 1) counted from the anchor. Periods are always
// computed from the anchor, never from the previous period end, so a subscription anchored on Jan 31 bills
// on Feb 28 (29), Mar 31, Apr 30, ... instead of drifting to the 28th forever, and month arithmetic never
// overflows into the next month (Go's AddDate turns Jan 31 + 1 month into Mar 3).
func PeriodEnd(anchor time.Time, unit Interval, count, n int) time.Time {
	anchor = anchor.UTC()
	switch unit {
	case Day:
		return anchor.AddDate(0, 0, count*n)
	case Week:
		return anchor.AddDate(0, 0, 7*count*n)
	case Month:
		return addMonthsClamped(anchor, count*n)
	case Year:
		return addMonthsClamped(anchor, 12*count*n)
	}
	panic("billing: unknown interval " + string(unit))
}

func addMonthsClamped(t time.Time, months int) time.Time {
	y, m, d := t.Date()
	total := int(m) - 1 + months
	ny, nm := y+total/12, time.Month(total%12+1)
	if total < 0 && total%12 != 0 {
		ny, nm = y+total/12-1, time.Month(total%12+13)
	}
	last := time.Date(ny, nm+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if d > last {
		d = last
	}
	hh, mm, ss := t.Clock()
	return time.Date(ny, nm, d, hh, mm, ss, t.Nanosecond(), time.UTC)
}

// periodIndexAt returns the n such that PeriodEnd(anchor, n-1) <= t < PeriodEnd(anchor, n), i.e. which
// period t falls in (1-based), for t at or after the anchor.
func periodIndexAt(anchor time.Time, unit Interval, count int, t time.Time) int {
	n := 1
	for !PeriodEnd(anchor, unit, count, n).After(t) {
		n++
	}
	return n
}
