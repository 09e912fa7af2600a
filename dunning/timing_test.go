package dunning_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/dunning"
)

var kst = mustZone("Asia/Seoul")

func mustZone(name string) *time.Location {
	loc, err := dunning.LoadZone(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// at is a wall time in loc.
func at(loc *time.Location, y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, loc)
}

// decline asks the default policy what follows the k-th soft decline with code at now.
func decline(p dunning.Policy, code string, k int, now time.Time, loc *time.Location, issuer string, rnd *rand.Rand) dunning.Decision {
	return p.AfterDecline(dunning.DeclineFacts{Code: code, Declines: k, CardAttempts: k, FirstFailedAt: now, Now: now,
		TimeZone: loc, Issuer: issuer}, rnd)
}

// A decline in the small hours is retried at the policy's hour on the ladder's day, spread over that hour.
func TestDeclineAt2AMKSTIsRetriedAtThePolicysHour(t *testing.T) {
	t.Parallel()
	p := dunning.DefaultPolicy()
	now := at(kst, 2027, 3, 3, 2, 0) // a Wednesday, 02:00 KST
	d := decline(p, "REJECT_CARD_COMPANY", 1, now, nil, "신한", nil)
	require.Equal(t, at(kst, 2027, 3, 4, 10, 0), d.RetryAt, "the next day (+1d) at 10:00 KST, the customer having no zone of their own")
	require.Contains(t, d.Why, "retry 1 of 4")

	for seed := range uint64(50) {
		d := decline(p, "REJECT_CARD_COMPANY", 1, now, nil, "신한", rand.New(rand.NewPCG(seed, 7)))
		local := d.RetryAt.In(kst)
		require.Equal(t, 4, local.Day())
		require.Equal(t, 10, local.Hour(), "spread within the hour, never outside it: %s", local)
	}

	// A policy with another hour is obeyed just as well.
	hour := 14
	p.RetryHour = &hour
	require.Equal(t, at(kst, 2027, 3, 4, 14, 0), decline(p, "REJECT_CARD_COMPANY", 1, now, nil, "", nil).RetryAt)
}

// The retry hour is the customer's: a customer in Los Angeles is retried at 10:00 Los Angeles time. In New
// York 10:00 is midnight in Seoul in winter, inside the issuers' maintenance: the retry waits for its end.
func TestRetryHourIsInTheCustomersTimeZone(t *testing.T) {
	t.Parallel()
	la := mustZone("America/Los_Angeles")
	d := decline(dunning.DefaultPolicy(), "do_not_honor", 1, at(la, 2027, 3, 3, 18, 0), la, "VISA", nil)
	require.Equal(t, at(la, 2027, 3, 4, 10, 0), d.RetryAt)

	ny := mustZone("America/New_York")
	d = decline(dunning.DefaultPolicy(), "do_not_honor", 1, at(ny, 2027, 3, 3, 18, 0), ny, "VISA", nil)
	require.True(t, at(kst, 2027, 3, 5, 0, 30).Equal(d.RetryAt), "10:00 EST is 00:00 KST: %s", d.RetryAt)
}

// A daily limit resets overnight: the retry waits for the next KST business day, whatever the ladder says.
func TestDailyLimitWaitsForTheNextKSTBusinessDay(t *testing.T) {
	t.Parallel()
	p := dunning.DefaultPolicy()
	const code = "EXCEED_MAX_DAILY_PAYMENT_COUNT"

	// Tuesday 23:50 KST (14:50 UTC, still Tuesday in UTC too): Wednesday 10:00 KST.
	d := decline(p, code, 1, at(kst, 2027, 3, 2, 23, 50), nil, "", nil)
	require.Equal(t, at(kst, 2027, 3, 3, 10, 0), d.RetryAt)

	// 00:10 KST on Wednesday is already Wednesday in Korea: the next KST day is Thursday, although it is
	// still Tuesday in UTC.
	d = decline(p, code, 1, at(kst, 2027, 3, 3, 0, 10), nil, "", nil)
	require.Equal(t, at(kst, 2027, 3, 4, 10, 0), d.RetryAt)
	require.Contains(t, d.Why, "daily limit")

	// Friday afternoon: Monday.
	d = decline(p, code, 1, at(kst, 2027, 3, 5, 15, 0), nil, "", nil)
	require.Equal(t, at(kst, 2027, 3, 8, 10, 0), d.RetryAt)
	require.Contains(t, d.Why, "next business day")

	// A holiday is not a business day.
	p.Holidays = []dunning.Date{"2027-03-08"}
	d = decline(p, code, 1, at(kst, 2027, 3, 5, 15, 0), nil, "", nil)
	require.Equal(t, at(kst, 2027, 3, 9, 10, 0), d.RetryAt)

	// The daily-limit rule has its own ladder: four retries.
	require.Equal(t, 4, p.MaxRetriesFor(code))
	require.True(t, decline(p, code, 5, at(kst, 2027, 3, 5, 15, 0), nil, "", nil).Exhausted)
}

// Insufficient funds wait for payday when one comes before the ladder's day or soon after it.
func TestInsufficientFundsRetryOnPayday(t *testing.T) {
	t.Parallel()
	p := dunning.DefaultPolicy()
	const code = "REJECT_CARD_PAYMENT"

	// Declined on Monday 8 March: the ladder says the 9th; payday (the 10th, a Wednesday) is within
	// payday_wait (3 days): retry on the 10th.
	d := decline(p, code, 1, at(kst, 2027, 3, 8, 0, 0), nil, "", nil)
	require.Equal(t, at(kst, 2027, 3, 10, 10, 0), d.RetryAt)
	require.Contains(t, d.Why, "payday")

	// Declined on the 1st: the 10th is too far past the ladder's day (the 2nd): the ladder wins.
	d = decline(p, code, 1, at(kst, 2027, 3, 1, 0, 0), nil, "", nil)
	require.Equal(t, at(kst, 2027, 3, 2, 10, 0), d.RetryAt)

	// Retry 4 waits 8 days, but payday comes first: money arrives then, so the retry does not wait.
	d = decline(p, code, 4, at(kst, 2027, 3, 20, 12, 0), nil, "", nil)
	require.Equal(t, at(kst, 2027, 3, 25, 10, 0), d.RetryAt)

	// A payday on a weekend is paid the business day before: 25 September 2027 is a Saturday.
	d = decline(p, code, 1, at(kst, 2027, 9, 22, 12, 0), nil, "", nil)
	require.Equal(t, at(kst, 2027, 9, 24, 10, 0), d.RetryAt)
}

// A retry that keeps its own time of day never starts in the customer's small hours.
func TestRetriesNeverStartInQuietHours(t *testing.T) {
	t.Parallel()
	p := dunning.DefaultPolicy()
	// "issuer unavailable" retries after 4 hours at any hour: 22:00 + 4h = 02:00, moved to 07:00.
	d := decline(p, "PROVIDER_ERROR", 1, at(kst, 2027, 3, 3, 22, 0), nil, "", nil)
	require.Equal(t, at(kst, 2027, 3, 4, 7, 0), d.RetryAt)
	require.Contains(t, d.Why, "quiet hours")
	// At 09:00 + 4h nothing moves.
	require.Equal(t, at(kst, 2027, 3, 3, 13, 0), decline(p, "PROVIDER_ERROR", 1, at(kst, 2027, 3, 3, 9, 0), nil, "", nil).RetryAt)
}

// Issuers' nightly maintenance is around midnight KST, whatever the customer's zone.
func TestRetriesAvoidIssuerMaintenanceWindows(t *testing.T) {
	t.Parallel()
	p := dunning.DefaultPolicy()
	berlin := mustZone("Europe/Berlin")
	hour := 16 // 16:00 in Berlin in March (UTC+1) is 00:00 KST
	p.RetryHour = &hour
	d := decline(p, "do_not_honor", 1, at(berlin, 2027, 3, 3, 12, 0), berlin, "VISA", nil)
	require.Equal(t, at(kst, 2027, 3, 5, 0, 30), d.RetryAt, "moved to the end of the 23:30-00:30 KST window")

	// An issuer with a window of its own uses it instead of the default one.
	p.MaintenanceWindows = append(p.MaintenanceWindows, dunning.MaintenanceWindow{Issuer: "국민", From: 23 * 60, To: 60 + 30})
	require.Equal(t, at(kst, 2027, 3, 5, 1, 30), decline(p, "do_not_honor", 1, at(berlin, 2027, 3, 3, 12, 0), berlin, "국민", nil).RetryAt)
	require.Equal(t, at(kst, 2027, 3, 5, 0, 30), decline(p, "do_not_honor", 1, at(berlin, 2027, 3, 3, 12, 0), berlin, "신한", nil).RetryAt)

	// AllowedAt is the rule the backup card's charge uses too.
	require.Equal(t, at(kst, 2027, 3, 4, 7, 0), p.AllowedAt(at(kst, 2027, 3, 4, 2, 0), kst, "신한"))
	require.Equal(t, at(kst, 2027, 3, 4, 12, 0), p.AllowedAt(at(kst, 2027, 3, 4, 12, 0), kst, "신한"))
}

// Without a retry hour the classic ladder keeps its time of day and its jitter.
func TestNoRetryHourKeepsTheClassicLadder(t *testing.T) {
	t.Parallel()
	p := dunning.DefaultPolicy()
	p.RetryHour, p.Rules = nil, nil
	now := at(kst, 2027, 3, 3, 12, 0)
	require.Equal(t, now.Add(day), decline(p, "REJECT_CARD_PAYMENT", 1, now, nil, "", nil).RetryAt)
	require.Equal(t, now.Add(8*day), decline(p, "REJECT_CARD_PAYMENT", 4, now, nil, "", nil).RetryAt)
}

// The backup card is offered only when the rule allows it: after a hard decline or the last soft retry.
func TestBackupCardOnlyWhenTheRuleAllows(t *testing.T) {
	t.Parallel()
	p := dunning.DefaultPolicy()
	now := at(kst, 2027, 3, 3, 12, 0)
	facts := dunning.DeclineFacts{Code: "REJECT_CARD_PAYMENT", Declines: 1, CardAttempts: 1, FirstFailedAt: now, Now: now, BackupAvailable: true}

	require.False(t, p.AfterDecline(facts, nil).TryBackup, "a soft decline with retries left stays on the default card")
	hard := facts
	hard.Hard = true
	d := p.AfterDecline(hard, nil)
	require.True(t, d.TryBackup)
	require.True(t, d.WaitForNewKey)
	last := facts
	last.Declines = 5
	d = p.AfterDecline(last, nil)
	require.True(t, d.TryBackup)
	require.True(t, d.Exhausted)
	last.BackupAvailable = false
	require.False(t, p.AfterDecline(last, nil).TryBackup, "no backup card, or it was tried already")

	p.BackupCard = []dunning.BackupTrigger{dunning.BackupAfterLastRetry}
	require.False(t, p.AfterDecline(hard, nil).TryBackup)
	p.BackupCard = nil
	require.False(t, p.AfterDecline(dunning.DeclineFacts{Hard: true, BackupAvailable: true, Now: now}, nil).TryBackup)
}

func TestTimingRulesFromAPolicyFile(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "timing.yaml", `
time_zone: Asia/Tokyo
retry_hour: 9
quiet_hours: {from: "22:00", to: "08:00"}
maintenance_windows:
  - {issuer: "*", from: "23:00", to: "01:00"}
paydays: [15]
holidays: ["2027-05-03"]
backup_card: [after_last_retry]
rules:
  - name: limits
    codes: [EXCEED_MAX_DAILY_PAYMENT_COUNT]
    delays: [1d, 1d]
    next_business_day: true
`)
	p, err := dunning.LoadPolicyFile(path)
	require.NoError(t, err)
	require.Equal(t, dunning.Zone("Asia/Tokyo"), p.TimeZone)
	require.Equal(t, 9, *p.RetryHour)
	require.Len(t, p.Rules, 1, "rules replace the default list")
	require.Equal(t, 2, p.MaxRetriesFor("EXCEED_MAX_DAILY_PAYMENT_COUNT"))
	tokyo := mustZone("Asia/Tokyo")
	// Friday 30 April 2027: Monday 3 May is a holiday, so Tuesday at 09:00 Tokyo time.
	d := decline(p, "EXCEED_MAX_DAILY_PAYMENT_COUNT", 1, at(tokyo, 2027, 4, 30, 12, 0), nil, "", nil)
	require.Equal(t, at(tokyo, 2027, 5, 4, 9, 0), d.RetryAt)
}

func TestTimingRulesAreValidated(t *testing.T) {
	t.Parallel()
	_, err := dunning.LoadPolicyFile(writeFile(t, "bad.yaml", `
time_zone: Mars/Olympus
retry_hour: 3
maintenance_windows:
  - {issuer: "", from: "25:00", to: "01:00"}
paydays: [0]
holidays: ["tomorrow"]
backup_card: [always]
rules:
  - codes: []
    delays: [0s]
  - codes: [X]
    delays: [1d]
    hour: 2
    typo: true
`))
	require.ErrorIs(t, err, dunning.ErrInvalidPolicy)
	for _, want := range []string{
		`unknown time zone "Mars/Olympus"`,
		`bad time of day "25:00"`,
		`unknown field "typo"`,
	} {
		require.ErrorContains(t, err, want)
	}
	p := dunning.DefaultPolicy()
	three, two := 3, 2
	p.RetryHour = &three
	p.Paydays = []int{0}
	p.Holidays = []dunning.Date{"tomorrow"}
	p.BackupCard = []dunning.BackupTrigger{"always"}
	p.MaintenanceWindows = []dunning.MaintenanceWindow{{Issuer: "", From: 60, To: 60}}
	p.Rules = []dunning.Rule{{Delays: []dunning.Duration{0}}, {Codes: []string{"X"}, Delays: []dunning.Duration{dunning.Duration(day)}, Hour: &two},
		{Codes: []string{"X"}, Delays: []dunning.Duration{dunning.Duration(day)}}}
	err = p.Validate()
	for _, want := range []string{
		"retry_hour 3 is inside quiet_hours 00:00-07:00",
		"maintenance_windows[0].issuer is required",
		"maintenance_windows[0] is empty",
		"paydays must be days of the month from 1 to 31, got 0",
		`holidays: "tomorrow" is not a date`,
		`backup_card: "always" is not`,
		"rules[0].codes must name at least one decline code",
		"rules[0].delays must all be positive",
		"rules[1].hour 2 is inside quiet_hours",
		"rules[2]: code X is already timed by an earlier rule",
	} {
		require.ErrorContains(t, err, want)
	}
}

// max_retries caps every rule's ladder: a plan that allows two retries gets two, whatever the code.
func TestMaxRetriesCapsRuleLadders(t *testing.T) {
	t.Parallel()
	p := dunning.DefaultPolicy()
	p.MaxRetries = 2
	require.Equal(t, 2, p.MaxRetriesFor("REJECT_CARD_PAYMENT"))
	now := at(kst, 2027, 3, 3, 12, 0)
	require.True(t, decline(p, "REJECT_CARD_PAYMENT", 3, now, nil, "", nil).Exhausted)
	require.False(t, decline(p, "REJECT_CARD_PAYMENT", 2, now, nil, "", nil).Exhausted)
}
