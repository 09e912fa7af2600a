package pgsim

import (
	"math/rand/v2"
	"time"
)

// Rule says when a fault fires: on each of the next Count matching requests, and after those (or when
// Count is 0) with Probability, drawn from the server's seeded generator.
type Rule struct {
	Probability float64 `json:"probability,omitempty"`
	Count       int     `json:"count,omitempty"`
}

// fire consumes one use of the rule. Must be called with the server's lock held (it uses the shared rng).
func (r *Rule) fire(rng *rand.Rand) bool {
	if r == nil {
		return false
	}
	if r.Count > 0 {
		r.Count--
		return true
	}
	return r.Probability > 0 && rng.Float64() < r.Probability
}

// LatencyFault delays a request by Ms milliseconds when its rule fires.
type LatencyFault struct {
	Rule
	Ms int `json:"ms"`
}

// CommitThenTimeoutFault commits the charge and then loses the answer: the connection is closed after
// the response headers, so the client sees a truncated body. With HangMs the server first waits that
// long (or until the client gives up), to exercise client timeouts.
type CommitThenTimeoutFault struct {
	Rule
	HangMs int `json:"hang_ms,omitempty"`
}

// ProcessingFault answers 409 IDEMPOTENT_REQUEST_PROCESSING and commits the charge DelayMs later
// (default 50); meanwhile a lookup of the order shows IN_PROGRESS.
type ProcessingFault struct {
	Rule
	DelayMs int `json:"delay_ms,omitempty"`
}

// RateLimitFault answers 429 with Retry-After (seconds, default 1) before doing anything.
type RateLimitFault struct {
	Rule
	RetryAfterSeconds int `json:"retry_after_seconds,omitempty"`
}

// ChargeFaults are the faults that can be set gateway-wide or for one billing key. Latency and
// rate limiting set gateway-wide apply to every Toss API request; the others apply to charges only.
type ChargeFaults struct {
	Latency              *LatencyFault           `json:"latency,omitempty"`
	CommitThenTimeout    *CommitThenTimeoutFault `json:"commit_then_timeout,omitempty"`
	Error5xxBeforeCommit *Rule                   `json:"error_5xx_before_commit,omitempty"`
	Error5xxAfterCommit  *Rule                   `json:"error_5xx_after_commit,omitempty"`
	Processing           *ProcessingFault        `json:"processing,omitempty"`
	RateLimit429         *RateLimitFault         `json:"rate_limit_429,omitempty"`
}

// OutageFault answers every Toss API request with 503 until Until (zero: until cleared). ForMs, accepted
// on input, sets Until relative to the server's clock.
type OutageFault struct {
	Until time.Time `json:"until,omitzero"`
	ForMs int       `json:"for_ms,omitempty"`
}

// WebhookFaults shape webhook delivery: Copies of each event (0-3; nil means 1), each DelayMs late; with
// Reorder every copy gets its own random delay in [0, 2*max(DelayMs, 20ms)), so events cross.
type WebhookFaults struct {
	Copies  *int `json:"copies,omitempty"`
	DelayMs int  `json:"delay_ms,omitempty"`
	Reorder bool `json:"reorder,omitempty"`
}

// Faults is the whole fault configuration.
type Faults struct {
	ChargeFaults
	// Cancels are the same faults for cancel (refund) requests: 5xx before or after the cancel is booked,
	// the answer lost after booking, IDEMPOTENT_REQUEST_PROCESSING (booked DelayMs later), 429, latency.
	Cancels     *ChargeFaults           `json:"cancels,omitempty"`
	Outage      *OutageFault            `json:"outage,omitempty"`
	Webhooks    *WebhookFaults          `json:"webhooks,omitempty"`
	BillingKeys map[string]ChargeFaults `json:"billing_keys,omitempty"`
}

func (f ChargeFaults) clone() ChargeFaults {
	out := ChargeFaults{}
	if f.Latency != nil {
		v := *f.Latency
		out.Latency = &v
	}
	if f.CommitThenTimeout != nil {
		v := *f.CommitThenTimeout
		out.CommitThenTimeout = &v
	}
	if f.Error5xxBeforeCommit != nil {
		v := *f.Error5xxBeforeCommit
		out.Error5xxBeforeCommit = &v
	}
	if f.Error5xxAfterCommit != nil {
		v := *f.Error5xxAfterCommit
		out.Error5xxAfterCommit = &v
	}
	if f.Processing != nil {
		v := *f.Processing
		out.Processing = &v
	}
	if f.RateLimit429 != nil {
		v := *f.RateLimit429
		out.RateLimit429 = &v
	}
	return out
}

func (f Faults) clone() Faults {
	out := Faults{ChargeFaults: f.ChargeFaults.clone()}
	if f.Cancels != nil {
		c := f.Cancels.clone()
		out.Cancels = &c
	}
	if f.Outage != nil {
		v := *f.Outage
		out.Outage = &v
	}
	if f.Webhooks != nil {
		v := *f.Webhooks
		if f.Webhooks.Copies != nil {
			c := *f.Webhooks.Copies
			v.Copies = &c
		}
		out.Webhooks = &v
	}
	if f.BillingKeys != nil {
		out.BillingKeys = make(map[string]ChargeFaults, len(f.BillingKeys))
		for k, v := range f.BillingKeys {
			out.BillingKeys[k] = v.clone()
		}
	}
	return out
}

// keyRules returns the per-key faults for bk. The copy shares the rule pointers, so firing a rule
// consumes the stored counter.
func (f *Faults) keyRules(bk string) ChargeFaults {
	if bk == "" || f.BillingKeys == nil {
		return ChargeFaults{}
	}
	return f.BillingKeys[bk]
}

func (f *ProcessingFault) fireP(rng *rand.Rand) bool { return f != nil && f.fire(rng) }

func (f *CommitThenTimeoutFault) fireP(rng *rand.Rand) bool { return f != nil && f.fire(rng) }
