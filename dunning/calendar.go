package dunning

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // customers' time zones must resolve in a container without /usr/share/zoneinfo
)

// Seoul is the default time zone: the service's customers are Korean first, and Korean issuers
// announce their maintenance windows in KST.
const Seoul = "Asia/Seoul"

// Zone is an IANA time-zone name ("Asia/Seoul") read from a policy document.
type Zone string

// Location resolves the zone; an invalid zone is refused by Validate, so this only falls back to KST
// for a policy built in code without validation.
func (z Zone) Location() *time.Location {
	loc, err := LoadZone(string(z))
	if err != nil {
		loc, _ = time.LoadLocation(Seoul)
	}
	return loc
}

// LoadZone resolves an IANA time-zone name. "Local" and "" are refused: a server's own zone says nothing
// about a customer.
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("time zone must be an IANA name such as %q", Seoul)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (use an IANA name such as %q)", name, Seoul)
	}
	return loc, nil
}

// ClockTime is a time of day, "HH:MM", stored as minutes after midnight.
type ClockTime int

// ParseClockTime reads "HH:MM" (00:00 to 24:00).
func ParseClockTime(s string) (ClockTime, error) {
	var h, m int
	if _, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || len(s) != 5 || h < 0 || h > 24 || m < 0 || m > 59 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("bad time of day %q (use HH:MM, e.g. 23:30)", s)
	}
	return ClockTime(h*60 + m), nil
}

func (c ClockTime) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

// UnmarshalJSON reads "HH:MM".
func (c *ClockTime) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("time of day must be a string like \"23:30\"")
	}
	v, err := ParseClockTime(s)
	*c = v
	return err
}

// MarshalJSON writes "HH:MM".
func (c ClockTime) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// DailyWindow is a span of every day from From to To; it crosses midnight when To is before From
// ("23:30" to "00:30"). From equal to To is no window at all.
type DailyWindow struct {
	From ClockTime `json:"from"`
	To   ClockTime `json:"to"`
}

// IsZero reports whether the window is empty.
func (w DailyWindow) IsZero() bool { return w.From == w.To }

func (w DailyWindow) String() string { return w.From.String() + "-" + w.To.String() }

// end returns when the window containing t ends, and whether t is inside the window. t is read in loc.
func (w DailyWindow) end(t time.Time, loc *time.Location) (time.Time, bool) {
	if w.IsZero() {
		return t, false
	}
	lt := t.In(loc)
	minute := ClockTime(lt.Hour()*60 + lt.Minute())
	day := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
	at := func(d time.Time, c ClockTime) time.Time {
		return time.Date(d.Year(), d.Month(), d.Day(), int(c)/60, int(c)%60, 0, 0, loc)
	}
	if w.From < w.To {
		if minute >= w.From && minute < w.To {
			return at(day, w.To), true
		}
		return t, false
	}
	// Crosses midnight: inside from From to 24:00, or from 00:00 to To.
	switch {
	case minute >= w.From:
		return at(day.AddDate(0, 0, 1), w.To), true
	case minute < w.To:
		return at(day, w.To), true
	}
	return t, false
}

// MaintenanceWindow is an issuer's nightly window in which charges fail for reasons that have nothing to
// do with the card. Issuer is the card's issuer as the key shows it (its brand, e.g. "국민", "VISA") or
// "*" for every issuer without a window of its own.
type MaintenanceWindow struct {
	Issuer   string    `json:"issuer"`
	From     ClockTime `json:"from"`
	To       ClockTime `json:"to"`
	TimeZone Zone      `json:"time_zone,omitempty"` // empty: KST, the zone issuers announce in
}

func (m MaintenanceWindow) window() DailyWindow { return DailyWindow{From: m.From, To: m.To} }

func (m MaintenanceWindow) location() *time.Location {
	if m.TimeZone == "" {
		return Zone(Seoul).Location()
	}
	return m.TimeZone.Location()
}

// Date is a calendar date, "2006-01-02", for holidays.
type Date string

func (d Date) parse() (time.Time, error) { return time.Parse(time.DateOnly, string(d)) }

// windowsFor is the maintenance windows that apply to a card of issuer: its own, or else the "*" ones.
func (p Policy) windowsFor(issuer string) []MaintenanceWindow {
	var own, any []MaintenanceWindow
	for _, w := range p.MaintenanceWindows {
		switch {
		case w.Issuer == "*":
			any = append(any, w)
		case issuer != "" && strings.EqualFold(w.Issuer, issuer):
			own = append(own, w)
		}
	}
	if len(own) > 0 {
		return own
	}
	return any
}

// AllowedAt is the first moment at or after t when a charge on a card of issuer may go out for a
// customer in loc: outside the policy's quiet hours (the customer's night) and outside the issuer's
// maintenance windows. Technical retries do not use it: gateway trouble has its own short backoff.
func (p Policy) AllowedAt(t time.Time, loc *time.Location, issuer string) time.Time {
	if loc == nil {
		loc = p.TimeZone.Location()
	}
	windows := p.windowsFor(issuer)
	// Moving out of one window can land in another; a few rounds settle any sane configuration.
	for range 8 {
		moved := false
		if end, in := p.QuietHours.end(t, loc); in {
			t, moved = end, true
		}
		for _, w := range windows {
			if end, in := w.window().end(t, w.location()); in {
				t, moved = end, true
			}
		}
		if !moved {
			break
		}
	}
	return t
}

// localDay is the calendar day of t in loc, at midnight.
func localDay(t time.Time, loc *time.Location) time.Time {
	lt := t.In(loc)
	return time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
}

// atHour is day's hour:00 in day's location.
func atHour(day time.Time, hour int) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), hour, 0, 0, 0, day.Location())
}

// IsBusinessDay reports whether day (a local date) is a weekday that is not one of the policy's holidays.
func (p Policy) IsBusinessDay(day time.Time) bool {
	if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	ds := day.Format(time.DateOnly)
	for _, h := range p.Holidays {
		if string(h) == ds {
			return false
		}
	}
	return true
}

// nextBusinessDay is the first business day after day.
func (p Policy) nextBusinessDay(day time.Time) time.Time {
	d := day.AddDate(0, 0, 1)
	for i := 0; i < 31 && !p.IsBusinessDay(d); i++ {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

// paydayOn is the day a payday of month falls on: the day of the month (the month's last day when it is
// shorter), moved to the business day before when it is a weekend or holiday, as Korean employers pay.
func (p Policy) paydayOn(year int, month time.Month, dom int, loc *time.Location) time.Time {
	last := time.Date(year, month+1, 0, 0, 0, 0, 0, loc).Day()
	d := time.Date(year, month, min(dom, last), 0, 0, 0, 0, loc)
	for i := 0; i < 7 && !p.IsBusinessDay(d); i++ {
		d = d.AddDate(0, 0, -1)
	}
	return d
}

// nextPayday is the first payday whose retry slot (at hour) is at least minGap after now.
func (p Policy) nextPayday(now time.Time, loc *time.Location, hour int) (time.Time, bool) {
	if len(p.Paydays) == 0 {
		return time.Time{}, false
	}
	today := localDay(now, loc)
	var best time.Time
	for m := 0; m < 3; m++ {
		month := time.Date(today.Year(), today.Month()+time.Month(m), 1, 0, 0, 0, 0, loc)
		for _, dom := range p.Paydays {
			d := p.paydayOn(month.Year(), month.Month(), dom, loc)
			if atHour(d, hour).Before(now.Add(minGap)) {
				continue
			}
			if best.IsZero() || d.Before(best) {
				best = d
			}
		}
		if !best.IsZero() {
			return best, true
		}
	}
	return time.Time{}, false
}

// minGap is the least time between a decline and its retry when the retry is put on a day's hour: a
// slot closer than this moves to the next day.
const minGap = time.Hour
