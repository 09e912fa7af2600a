// Package simulate replays recorded dunning episodes against a dunning policy and predicts what it would
// have recovered: `billingctl dunning simulate` and the console's policy comparison. It is pure: the
// history comes in (billing loads it), figures come out.
//
// # The model (what "would have succeeded" means)
//
// The record says when each card was declined and when (if ever) it paid. Between a card's last decline
// and its first success the record is silent, so the model assumes:
//
//  1. A card that paid after declining became chargeable halfway between its last decline and that
//     success ("healed at the midpoint"). A charge at or after that moment succeeds; one before it is
//     declined with the code of the latest recorded decline at or before it (the first one's, earlier).
//  2. A card whose record ends in a decline never heals: the model credits no policy with a recovery the
//     record cannot show, so it under-estimates policies that retry longer than the one that ran.
//  3. A card hard-declined at the first failure stays hard-declined: no policy retries it.
//  4. Money from elsewhere (a new card, the backup card, an offline payment, a void) arrives when it did,
//     if the episode is still open then under the simulated policy.
//  5. Nothing after the end of the record (as of) is known: an episode still open then is counted as
//     open, neither recovered nor canceled.
//
// The first failure itself is the same charge under every policy; what differs is every retry after it.
// Calendar rules (retry hour, quiet hours, maintenance windows, paydays, business days) apply in the
// customer's time zone exactly as in production, without random spread (retries land at the hour).
package simulate

import (
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/dunning"
)

// Charge is one recorded charge on the episode's default card.
type Charge struct {
	At        time.Time
	Succeeded bool
	Code      string // decline code; empty for a success
	Hard      bool
}

// Episode is one invoice's dunning, from its first failure, as the record has it.
type Episode struct {
	InvoiceID  string
	CustomerID string
	Amount     decimal.Decimal
	Currency   string
	// Charges on the card that failed first (the default card at the time), in order; Charges[0] is the
	// first failure.
	Charges []Charge
	// PaidElsewhereAt is when money from another source settled the invoice (new card, backup card,
	// offline payment) or support voided it; nil if it never did.
	PaidElsewhereAt *time.Time
	// TimeZone is the customer's (nil: the policy's); Issuer the card's issuer.
	TimeZone *time.Location
	Issuer   string
	// Recorded is what actually happened, for the "recorded" column.
	Recorded Outcome
}

// Outcome is how one episode ended (or stands at the end of the record).
type Outcome struct {
	Recovered   bool
	RecoveredAt time.Time
	Canceled    bool // the final action ran (cancel or unpaid): the customer is lost to dunning
	Charges     int  // charges sent on the default card, the first failure included
}

// Figures are a policy's results over the episodes.
type Figures struct {
	Episodes  int
	Recovered int
	Open      int // still in dunning at the end of the record
	// RecoveredRevenue per currency.
	RecoveredRevenue map[string]decimal.Decimal
	ChargesSent      int
	// CustomersCanceled counts distinct customers with an episode that ended in the final action.
	CustomersCanceled int
	// DaysToRecover is the mean time from first failure to recovery, over recovered episodes, in days.
	DaysToRecover float64
}

// RecoveryRate is recovered episodes over all of them.
func (f Figures) RecoveryRate() float64 {
	if f.Episodes == 0 {
		return 0
	}
	return float64(f.Recovered) / float64(f.Episodes)
}

// PolicyFor gives the policy that applies to an episode (its plan's, its customer's override).
type PolicyFor func(Episode) dunning.Policy

// Run replays every episode under the policies and adds up the figures. asOf is the end of the record.
func Run(episodes []Episode, policyFor PolicyFor, asOf time.Time) Figures {
	outcomes := make([]Outcome, len(episodes))
	for i, e := range episodes {
		outcomes[i] = Replay(e, policyFor(e), asOf)
	}
	return Sum(episodes, outcomes)
}

// Recorded adds up what actually happened.
func Recorded(episodes []Episode) Figures {
	outcomes := make([]Outcome, len(episodes))
	for i, e := range episodes {
		outcomes[i] = e.Recorded
	}
	return Sum(episodes, outcomes)
}

// Sum adds up outcomes (outcomes[i] is episodes[i]'s).
func Sum(episodes []Episode, outcomes []Outcome) Figures {
	f := Figures{Episodes: len(episodes), RecoveredRevenue: map[string]decimal.Decimal{}}
	canceled := map[string]bool{}
	var days float64
	for i, e := range episodes {
		o := outcomes[i]
		f.ChargesSent += o.Charges
		switch {
		case o.Recovered:
			f.Recovered++
			f.RecoveredRevenue[e.Currency] = f.RecoveredRevenue[e.Currency].Add(e.Amount)
			days += o.RecoveredAt.Sub(e.Charges[0].At).Hours() / 24
		case o.Canceled:
			canceled[e.CustomerID] = true
		default:
			f.Open++
		}
	}
	f.CustomersCanceled = len(canceled)
	if f.Recovered > 0 {
		f.DaysToRecover = days / float64(f.Recovered)
	}
	return f
}

// healedAt is when the model says the card became chargeable (model rule 1), or false if never (rule 2).
func healedAt(e Episode) (time.Time, bool) {
	for i, c := range e.Charges {
		if c.Succeeded {
			if i == 0 {
				return c.At, true
			}
			prev := e.Charges[i-1].At
			return prev.Add(c.At.Sub(prev) / 2), true
		}
	}
	return time.Time{}, false
}

// codeAt is the decline a charge at t meets: the latest recorded decline at or before t, else the first.
func codeAt(e Episode, t time.Time) (string, bool) {
	code, hard := e.Charges[0].Code, e.Charges[0].Hard
	for _, c := range e.Charges {
		if c.Succeeded || c.At.After(t) {
			break
		}
		code, hard = c.Code, c.Hard
	}
	return code, hard
}

// Replay walks one episode under policy p.
func Replay(e Episode, p dunning.Policy, asOf time.Time) Outcome {
	first := e.Charges[0]
	o := Outcome{Charges: 1}
	if first.Succeeded {
		return Outcome{Recovered: true, RecoveredAt: first.At, Charges: 1}
	}
	heal, heals := healedAt(e)
	elsewhere := func(before time.Time) (time.Time, bool) {
		if e.PaidElsewhereAt != nil && !e.PaidElsewhereAt.After(before) && !e.PaidElsewhereAt.After(asOf) {
			return *e.PaidElsewhereAt, true
		}
		return time.Time{}, false
	}
	now, code, hard, declines := first.At, first.Code, first.Hard, 1
	for {
		d := p.AfterDecline(dunning.DeclineFacts{Hard: hard, Code: code, Declines: declines, CardAttempts: declines,
			FirstFailedAt: first.At, Now: now, TimeZone: e.TimeZone, Issuer: e.Issuer}, nil)
		switch {
		case !d.RetryAt.IsZero():
			if at, ok := elsewhere(d.RetryAt); ok {
				o.Recovered, o.RecoveredAt = true, at
				return o
			}
			if d.RetryAt.After(asOf) {
				return o // open at the end of the record
			}
			o.Charges++
			if heals && !d.RetryAt.Before(heal) {
				o.Recovered, o.RecoveredAt = true, d.RetryAt
				return o
			}
			now, declines = d.RetryAt, declines+1
			code, hard = codeAt(e, now)
		case d.WaitForNewKey:
			end := first.At.Add(p.DunningWindow.D())
			if at, ok := elsewhere(end); ok {
				o.Recovered, o.RecoveredAt = true, at
				return o
			}
			o.Canceled = !end.After(asOf)
			return o
		default: // exhausted: the final action now
			if at, ok := elsewhere(now); ok {
				o.Recovered, o.RecoveredAt = true, at
				return o
			}
			o.Canceled = true
			return o
		}
	}
}

// Currencies lists the currencies of a figures' revenue, sorted.
func (f Figures) Currencies() []string {
	out := make([]string, 0, len(f.RecoveredRevenue))
	for c := range f.RecoveredRevenue {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}
