package dunning

import (
	"fmt"
	"strings"
	"time"
)

// Step is one moment of a policy's nominal timeline (no jitter), counted from the first failure.
type Step struct {
	At   time.Duration
	Kind StepKind
	// Label says what happens, e.g. "retry 2 (+2d)".
	Label string
}

// StepKind classifies a Step.
type StepKind string

const (
	StepCharge   StepKind = "charge"    // the failed renewal charge that starts dunning
	StepRetry    StepKind = "retry"     // a soft-decline retry on the same card
	StepGraceEnd StepKind = "grace_end" // past_due -> suspended
	StepFinal    StepKind = "final"     // the final action, when every retry has failed
)

// Timeline is the schedule a soft-declining card walks under p when every attempt fails: the first
// charge, each retry, the grace end and the final action. It is what docs/dunning-timeline.svg draws.
func (p Policy) Timeline() []Step {
	steps := []Step{{At: 0, Kind: StepCharge, Label: "renewal declined"}}
	at := time.Duration(0)
	for k := 1; k <= p.MaxRetries; k++ {
		d := p.RetryDelay(k, nil)
		at += d
		steps = append(steps, Step{At: at, Kind: StepRetry, Label: fmt.Sprintf("retry %d (+%s)", k, ShortDuration(d))})
	}
	steps = append(steps, Step{At: p.GracePeriod.D(), Kind: StepGraceEnd, Label: "grace ends: suspended"})
	// Exhausted after the last retry fails, but never before the dunning window ends (the dunning-end step
	// waits for a retry still to come, and a hard decline waits for the window).
	final := max(at, p.DunningWindow.D())
	if p.MaxRetries == 0 {
		final = 0
	}
	steps = append(steps, Step{At: final, Kind: StepFinal, Label: "final action: " + string(p.FinalAction)})
	return steps
}

// ShortDuration writes d the way the timeline labels do ("1d", "36h", "5m").
func ShortDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 && d > 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	for _, z := range []string{"0s", "0m"} {
		if t, ok := strings.CutSuffix(s, z); ok && len(t) > 0 && (t[len(t)-1] == 'm' || t[len(t)-1] == 'h') {
			s = t
		}
	}
	return s
}
