package dunning

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Rule times the retries of soft declines with particular codes: its own delay ladder, the hour of day
// to retry in, and calendar hints. A soft decline whose code no rule names follows the policy's
// exponential ladder (retry_base, retry_factor, max_retries) at the policy's retry_hour.
type Rule struct {
	// Name labels the rule on timelines ("daily limit"); optional.
	Name string `json:"name,omitempty"`
	// Codes are the gateways' decline codes the rule is for (Toss and Stripe spellings side by side).
	Codes []string `json:"codes"`
	// Delays is the ladder: retry k waits Delays[k-1] after decline k. Its length is the number of
	// retries a card declining with these codes gets (capped by the policy's max_retries).
	Delays []Duration `json:"delays"`
	// Hour is the local hour (0-23, the customer's time zone) to retry in; nil keeps the policy's
	// retry_hour, and -1 keeps the delay's own time of day (for declines that clear within hours).
	Hour *int `json:"hour,omitempty"`
	// NextBusinessDay puts the retry no earlier than the next business day (weekdays that are not
	// holidays): daily limits reset overnight, and bank-side limits count business days.
	NextBusinessDay bool `json:"next_business_day,omitempty"`
	// Paydays moves the retry to a payday (the policy's paydays) when one comes before the ladder's
	// date, or within payday_wait after it: money that was missing arrives on payday.
	Paydays bool `json:"paydays,omitempty"`
}

// label names the rule in a decision's Why.
func (r *Rule) label() string {
	if r == nil {
		return "default ladder"
	}
	if r.Name != "" {
		return r.Name
	}
	return strings.Join(r.Codes, ",")
}

// ruleFor is the first rule naming code, or nil.
func (p Policy) ruleFor(code string) *Rule {
	for i := range p.Rules {
		if slices.Contains(p.Rules[i].Codes, code) {
			return &p.Rules[i]
		}
	}
	return nil
}

// MaxRetriesFor is how many soft retries a card declining with code gets: its rule's ladder, never more
// than max_retries (the cap an operator or a plan sets holds for every code).
func (p Policy) MaxRetriesFor(code string) int {
	if r := p.ruleFor(code); r != nil {
		return min(len(r.Delays), p.MaxRetries)
	}
	return p.MaxRetries
}

// nominalDelay is retry k's delay before jitter and calendar rules.
func (p Policy) nominalDelay(r *Rule, k int) time.Duration {
	if r != nil {
		return r.Delays[min(k, len(r.Delays))-1].D()
	}
	return p.RetryDelay(k, nil)
}

func (p Policy) hourFor(r *Rule) *int {
	if r != nil && r.Hour != nil {
		if *r.Hour < 0 {
			return nil
		}
		return r.Hour
	}
	return p.RetryHour
}

// validateTiming lists the problems of the timing keys.
func (p Policy) validateTiming() []string {
	var errs []string
	bad := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	if _, err := LoadZone(string(p.TimeZone)); err != nil {
		bad("time_zone: %v", err)
	}
	inQuiet := func(h int) bool {
		_, in := p.QuietHours.end(time.Date(2026, 1, 1, h, 0, 0, 0, time.UTC), time.UTC)
		return in
	}
	if p.RetryHour != nil && (*p.RetryHour < 0 || *p.RetryHour > 23) {
		bad("retry_hour must be from 0 to 23 (or null)")
	} else if p.RetryHour != nil && inQuiet(*p.RetryHour) {
		bad("retry_hour %d is inside quiet_hours %s", *p.RetryHour, p.QuietHours)
	}
	for i, w := range p.MaintenanceWindows {
		if strings.TrimSpace(w.Issuer) == "" {
			bad("maintenance_windows[%d].issuer is required (an issuer's name, or \"*\" for all)", i)
		}
		if w.From == w.To {
			bad("maintenance_windows[%d] is empty (from equals to)", i)
		}
		if w.TimeZone != "" {
			if _, err := LoadZone(string(w.TimeZone)); err != nil {
				bad("maintenance_windows[%d].time_zone: %v", i, err)
			}
		}
	}
	for _, d := range p.Paydays {
		if d < 1 || d > 31 {
			bad("paydays must be days of the month from 1 to 31, got %d", d)
		}
	}
	if p.PaydayWait < 0 || p.PaydayWait.D() > 15*24*time.Hour {
		bad("payday_wait must be from 0 to 15d")
	}
	for _, h := range p.Holidays {
		if _, err := h.parse(); err != nil {
			bad("holidays: %q is not a date like 2027-01-01", string(h))
		}
	}
	seen := map[string]bool{}
	for i, r := range p.Rules {
		name := fmt.Sprintf("rules[%d]", i)
		if len(r.Codes) == 0 {
			bad("%s.codes must name at least one decline code", name)
		}
		for _, c := range r.Codes {
			if seen[c] {
				bad("%s: code %s is already timed by an earlier rule", name, c)
			}
			seen[c] = true
		}
		if len(r.Delays) > 30 {
			bad("%s.delays: at most 30 retries", name)
		}
		for _, d := range r.Delays {
			if d <= 0 {
				bad("%s.delays must all be positive", name)
				break
			}
		}
		if r.Hour != nil && (*r.Hour < -1 || *r.Hour > 23) {
			bad("%s.hour must be from 0 to 23, or -1 for the delay's own time", name)
		} else if r.Hour != nil && *r.Hour >= 0 && inQuiet(*r.Hour) {
			bad("%s.hour %d is inside quiet_hours %s", name, *r.Hour, p.QuietHours)
		}
		if r.Paydays && p.hourFor(&p.Rules[i]) == nil {
			bad("%s: paydays needs a retry hour (retry_hour or the rule's hour)", name)
		}
		if r.Paydays && len(p.Paydays) == 0 {
			bad("%s: paydays is set but the policy lists no paydays", name)
		}
	}
	for _, b := range p.BackupCard {
		if b != BackupAfterHardDecline && b != BackupAfterLastRetry {
			bad("backup_card: %q is not %s or %s", b, BackupAfterHardDecline, BackupAfterLastRetry)
		}
	}
	return errs
}

// RetryAt is when soft retry k (1-based) after a decline with code at now should happen, for a customer
// in loc and a card of issuer, and why. Without a retry hour the delay keeps its time of day and moves by
// the policy's jitter; with one, the retry lands on the delay's local date at that hour, spread over the
// hour by rnd so a billing day's failures do not retry in one burst. Either way the result is moved out
// of quiet hours and the issuer's maintenance windows.
func (p Policy) RetryAt(code string, k int, now time.Time, loc *time.Location, issuer string, rnd *rand.Rand) (time.Time, string) {
	if loc == nil {
		loc = p.TimeZone.Location()
	}
	r := p.ruleFor(code)
	delay := p.nominalDelay(r, k)
	var notes []string
	var at time.Time
	if hour := p.hourFor(r); hour == nil {
		if r == nil {
			at = now.Add(p.RetryDelay(k, rnd))
		} else {
			at = now.Add(p.jitter(delay, rnd))
		}
		if r != nil && r.NextBusinessDay {
			if nb := p.nextBusinessDay(localDay(now, loc)); at.Before(nb) {
				at = nb
				notes = append(notes, "next business day")
			}
		}
	} else {
		day := localDay(now.Add(delay), loc)
		if r != nil && r.NextBusinessDay {
			if nb := p.nextBusinessDay(localDay(now, loc)); day.Before(nb) {
				day = nb
				notes = append(notes, "next business day")
			}
		}
		if r != nil && r.Paydays {
			if pd, ok := p.nextPayday(now, loc, *hour); ok && !pd.Equal(day) && !pd.After(day.Add(p.PaydayWait.D())) {
				day = pd
				notes = append(notes, "payday")
			}
		}
		at = atHour(day, *hour)
		for at.Before(now.Add(minGap)) {
			day = day.AddDate(0, 0, 1)
			at = atHour(day, *hour)
		}
		if rnd != nil {
			at = at.Add(time.Duration(rnd.Int64N(int64(time.Hour/time.Second))) * time.Second)
		}
		notes = append(notes, fmt.Sprintf("at %02d:00 %s", *hour, loc))
	}
	if allowed := p.AllowedAt(at, loc, issuer); !allowed.Equal(at) {
		at = allowed
		notes = append(notes, "moved out of quiet hours or issuer maintenance")
	}
	why := fmt.Sprintf("soft decline %s (%s): retry %d of %d", code, r.label(), k, p.MaxRetriesFor(code))
	if len(notes) > 0 {
		why += ", " + strings.Join(notes, ", ")
	}
	return at, why
}

// jitter moves d by up to ±JitterPercent.
func (p Policy) jitter(d time.Duration, rnd *rand.Rand) time.Duration {
	if p.JitterPercent > 0 && rnd != nil {
		span := int64(d) * int64(p.JitterPercent) / 100
		d += time.Duration(rnd.Int64N(2*span+1) - span)
	}
	return d
}

// BackupTrigger names when a customer's backup card may be charged.
type BackupTrigger string

const (
	// BackupAfterHardDecline: the default card can no longer be charged (a hard decline, or the per-card
	// cap) and only a new card would heal.
	BackupAfterHardDecline BackupTrigger = "after_hard_decline"
	// BackupAfterLastRetry: the default card's last soft retry failed; the backup is tried before the
	// final action.
	BackupAfterLastRetry BackupTrigger = "after_last_retry"
)

func (p Policy) backupOn(t BackupTrigger) bool { return slices.Contains(p.BackupCard, t) }
