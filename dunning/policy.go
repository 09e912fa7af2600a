package dunning

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// FinalAction is what happens to a subscription when dunning is exhausted.
type FinalAction string

const (
	FinalCancel FinalAction = "cancel"
	FinalUnpaid FinalAction = "unpaid"
)

// Duration is a time.Duration that reads "36h", "1d" or "15d" from JSON/YAML.
type Duration time.Duration

// ParseDuration accepts Go durations plus a "d" (24h) unit.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err != nil || fmt.Sprint(days) != n {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		return Duration(time.Duration(days) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q (use e.g. 90m, 36h or 7d)", s)
	}
	return Duration(d), nil
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"7d\" or \"36h\"")
	}
	v, err := ParseDuration(s)
	*d = v
	return err
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	td := time.Duration(d)
	if td%(24*time.Hour) == 0 && td > 0 {
		return json.Marshal(fmt.Sprintf("%dd", td/(24*time.Hour)))
	}
	return json.Marshal(td.String())
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Policy is one dunning policy. The zero value is not valid; start from DefaultPolicy.
type Policy struct {
	// Soft-decline retries: the k-th retry (k = 1..MaxRetries) waits RetryBase * RetryFactor^(k-1),
	// moved by up to ±JitterPercent.
	RetryBase     Duration `json:"retry_base"`
	RetryFactor   int      `json:"retry_factor"`
	MaxRetries    int      `json:"max_retries"`
	JitterPercent int      `json:"jitter_percent"`
	// Per-card cap: no more than MaxAttemptsPerCard charges on one billing key within CardWindow.
	MaxAttemptsPerCard int      `json:"max_attempts_per_card"`
	CardWindow         Duration `json:"card_window"`
	// GracePeriod keeps service on (past_due) after the first failure; then the subscription is suspended.
	GracePeriod Duration `json:"grace_period"`
	// DunningWindow, counted from the first failure, bounds dunning even when no retry is possible
	// (a hard decline and no new key): at its end the final action applies.
	DunningWindow Duration    `json:"dunning_window"`
	FinalAction   FinalAction `json:"final_action"`
	// Technical backoff for gateway trouble: base doubling up to max; never counts as a retry.
	TechnicalBase Duration `json:"technical_base"`
	TechnicalMax  Duration `json:"technical_max"`
	// IncompleteExpiry is how long a new subscription may stay incomplete before it expires.
	IncompleteExpiry Duration `json:"incomplete_expiry"`

	// Timing by reason and calendar (docs/dunning.md, "When retries happen").
	//
	// TimeZone is the zone of customers who have none of their own.
	TimeZone Zone `json:"time_zone"`
	// RetryHour is the local hour soft retries go out in (nil: a retry keeps the delay's time of day).
	RetryHour *int `json:"retry_hour"`
	// QuietHours is the customer's night: no retry starts inside it.
	QuietHours DailyWindow `json:"quiet_hours"`
	// MaintenanceWindows are issuers' nightly windows (KST unless a window says otherwise).
	MaintenanceWindows []MaintenanceWindow `json:"maintenance_windows"`
	// Paydays are days of the month salaries arrive; PaydayWait is how long past its ladder date a
	// payday rule's retry may wait for one.
	Paydays    []int    `json:"paydays"`
	PaydayWait Duration `json:"payday_wait"`
	// Holidays are dates that are not business days (weekends never are).
	Holidays []Date `json:"holidays"`
	// Rules time soft declines by code; codes no rule names follow the exponential ladder above.
	Rules []Rule `json:"rules"`
	// BackupCard lists when a customer's backup card is charged, once per invoice.
	BackupCard []BackupTrigger `json:"backup_card"`
}

// DefaultPolicy is ARCHITECTURE.md's default: retries at +1d, +2d, +4d, +8d, five attempts in about
// fifteen days, at most 15 attempts per card in 30 days, 7 days of grace, then cancel; timed as
// docs/dunning.md explains: at 10:00 in the customer's zone (KST by default), never from midnight to
// 07:00, never in the issuers' nightly maintenance (23:30-00:30 KST), daily limits on the next business
// day, insufficient funds on payday (10th and 25th), and the backup card before giving up.
func DefaultPolicy() Policy {
	day := Duration(24 * time.Hour)
	hour, anyHour := 10, -1
	return Policy{
		RetryBase: day, RetryFactor: 2, MaxRetries: 4, JitterPercent: 10,
		MaxAttemptsPerCard: 15, CardWindow: 30 * day,
		GracePeriod: 7 * day, DunningWindow: 15 * day, FinalAction: FinalCancel,
		TechnicalBase: Duration(5 * time.Minute), TechnicalMax: Duration(time.Hour),
		IncompleteExpiry: Duration(23 * time.Hour),

		TimeZone:   Seoul,
		RetryHour:  &hour,
		QuietHours: DailyWindow{From: 0, To: 7 * 60},
		MaintenanceWindows: []MaintenanceWindow{
			{Issuer: "*", From: 23*60 + 30, To: 30},
		},
		Paydays:    []int{10, 25},
		PaydayWait: 3 * day,
		Holidays:   []Date{},
		Rules: []Rule{
			{Name: "daily limit", Codes: []string{"EXCEED_MAX_DAILY_PAYMENT_COUNT", "EXCEED_MAX_ONE_DAY_AMOUNT",
				"EXCEED_MAX_ONE_DAY_WITHDRAW_AMOUNT", "EXCEED_MAX_AUTH_COUNT"},
				Delays: []Duration{day, day, 2 * day, 4 * day}, NextBusinessDay: true},
			{Name: "insufficient funds", Codes: []string{"REJECT_CARD_PAYMENT", "REJECT_ACCOUNT_PAYMENT", "insufficient_funds"},
				Delays: []Duration{day, 2 * day, 4 * day, 8 * day}, Paydays: true},
			{Name: "issuer unavailable", Codes: []string{"PROVIDER_ERROR", "NOT_AVAILABLE_PAYMENT", "NOT_AVAILABLE_BANK",
				"CARD_PROCESSING_ERROR", "issuer_not_available", "try_again_later", "processing_error"},
				Delays: []Duration{Duration(4 * time.Hour), day, 2 * day, 4 * day}, Hour: &anyHour},
		},
		BackupCard: []BackupTrigger{BackupAfterHardDecline, BackupAfterLastRetry},
	}
}

// Validate reports every problem with the policy.
func (p Policy) Validate() error {
	var errs []string
	bad := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	if p.RetryBase <= 0 {
		bad("retry_base must be positive")
	}
	if p.RetryFactor < 1 || p.RetryFactor > 10 {
		bad("retry_factor must be from 1 to 10")
	}
	if p.MaxRetries < 0 || p.MaxRetries > 30 {
		bad("max_retries must be from 0 to 30")
	}
	if p.JitterPercent < 0 || p.JitterPercent > 50 {
		bad("jitter_percent must be from 0 to 50")
	}
	if p.MaxAttemptsPerCard < 1 {
		bad("max_attempts_per_card must be at least 1")
	}
	if p.CardWindow <= 0 {
		bad("card_window must be positive")
	}
	if p.GracePeriod < 0 {
		bad("grace_period must not be negative")
	}
	if p.DunningWindow < p.GracePeriod {
		bad("dunning_window must be at least grace_period")
	}
	if p.FinalAction != FinalCancel && p.FinalAction != FinalUnpaid {
		bad("final_action must be cancel or unpaid, got %q", p.FinalAction)
	}
	if p.TechnicalBase <= 0 || p.TechnicalMax < p.TechnicalBase {
		bad("technical_base must be positive and technical_max at least technical_base")
	}
	if p.IncompleteExpiry <= 0 {
		bad("incomplete_expiry must be positive")
	}
	errs = append(errs, p.validateTiming()...)
	if len(errs) > 0 {
		return &PolicyError{Problems: errs}
	}
	return nil
}

// PolicyError lists everything that is wrong with a policy (and, for a file, which file).
type PolicyError struct {
	Source   string // the file the policy came from; empty for a policy built in code or a plan override
	Problems []string
}

func (e *PolicyError) Error() string {
	where := ""
	if e.Source != "" {
		where = " in " + e.Source
	}
	return "invalid dunning policy" + where + ": " + strings.Join(e.Problems, "; ")
}

// ErrInvalidPolicy matches any *PolicyError.
var ErrInvalidPolicy = errors.New("invalid dunning policy")

// Is makes errors.Is(err, ErrInvalidPolicy) work.
func (e *PolicyError) Is(target error) bool { return target == ErrInvalidPolicy }

// RetryDelay is the wait before soft retry number k (1-based), with jitter drawn from rnd.
func (p Policy) RetryDelay(k int, rnd *rand.Rand) time.Duration {
	d := p.RetryBase.D()
	for i := 1; i < k; i++ {
		d *= time.Duration(p.RetryFactor)
	}
	if p.JitterPercent > 0 && rnd != nil {
		span := int64(d) * int64(p.JitterPercent) / 100
		d += time.Duration(rnd.Int64N(2*span+1) - span)
	}
	return d
}

// TechnicalDelay is the wait after the n-th consecutive technical failure (1-based).
func (p Policy) TechnicalDelay(n int) time.Duration {
	d := p.TechnicalBase.D()
	for i := 1; i < n && d < p.TechnicalMax.D(); i++ {
		d *= 2
	}
	return min(d, p.TechnicalMax.D())
}

// DeclineFacts are what a decision after a decline depends on.
type DeclineFacts struct {
	Hard bool // the decline class is hard: the key must not be charged again
	// Code is the gateway's decline code; it picks the rule that times the retry.
	Code string
	// Declines is the number of declined attempts on the invoice's cards, this one included (attempts on
	// the backup card are not counted).
	Declines int
	// CardAttempts is the number of charges on this billing key within the policy's card window.
	CardAttempts int
	// FirstFailedAt is when the invoice first failed (now, for the first failure).
	FirstFailedAt time.Time
	Now           time.Time
	// TimeZone is the customer's (nil: the policy's).
	TimeZone *time.Location
	// Issuer is the declined card's issuer (its brand), for maintenance windows.
	Issuer string
	// BackupAvailable is set when the customer has a backup card not yet tried on this invoice.
	BackupAvailable bool
}

// Decision is what to do after a decline.
type Decision struct {
	// RetryAt is when to try again on the same key; zero means no retry on this key.
	RetryAt time.Time
	// WaitForNewKey is set when only a new billing key can heal (hard decline or card cap).
	WaitForNewKey bool
	// Exhausted is set when soft retries are used up: apply the final action now (after the backup
	// card, when TryBackup is set too).
	Exhausted bool
	// TryBackup is set when the policy lets the customer's backup card be charged now, once; the
	// caller schedules it at AllowedAt and decides the rest after its outcome.
	TryBackup bool
	// Why, for the timeline.
	Why string
}

// AfterDecline decides the next step after a declined attempt.
func (p Policy) AfterDecline(f DeclineFacts, rnd *rand.Rand) Decision {
	backup := func(t BackupTrigger) bool { return f.BackupAvailable && p.backupOn(t) }
	switch {
	case f.Hard:
		return Decision{WaitForNewKey: true, TryBackup: backup(BackupAfterHardDecline), Why: "hard decline: no retry on this key until a new one is registered"}
	case f.CardAttempts >= p.MaxAttemptsPerCard:
		return Decision{WaitForNewKey: true, TryBackup: backup(BackupAfterHardDecline), Why: fmt.Sprintf("card cap: %d attempts within %s", f.CardAttempts, p.CardWindow.D())}
	case f.Declines > p.MaxRetriesFor(f.Code):
		return Decision{Exhausted: true, TryBackup: backup(BackupAfterLastRetry), Why: fmt.Sprintf("retries exhausted after %d attempts", f.Declines)}
	}
	at, why := p.RetryAt(f.Code, f.Declines, f.Now, f.TimeZone, f.Issuer, rnd)
	return Decision{RetryAt: at, Why: why}
}

// Policies holds the default policy and per-plan overrides.
type Policies struct {
	mu      sync.RWMutex
	def     Policy
	perPlan map[string]Policy
}

// NewPolicies makes a set with def as the default.
func NewPolicies(def Policy) *Policies { return &Policies{def: def, perPlan: map[string]Policy{}} }

// Default returns the service-wide policy.
func (ps *Policies) Default() Policy {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return ps.def
}

// For returns the plan's policy: its override (a JSON document over the default, read as strictly as
// the policy file: unknown keys refused) if it has one.
func (ps *Policies) For(planOverride []byte) (Policy, error) {
	p := ps.Default()
	if len(planOverride) == 0 || string(planOverride) == "null" {
		return p, nil
	}
	return ParsePolicy(planOverride, p)
}
