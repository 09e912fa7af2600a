package dunning_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/dunning"
)

func TestDefaultTimelineIsTheDocumentedSchedule(t *testing.T) {
	t.Parallel()
	type step struct {
		label string
		day   float64
	}
	var got []step
	for _, s := range dunning.DefaultPolicy().Timeline() {
		got = append(got, step{s.Label, s.At.Hours() / 24})
	}
	require.Equal(t, []step{
		{"renewal declined", 0},
		{"retry 1 (+1d)", 1},
		{"retry 2 (+2d)", 3},
		{"retry 3 (+4d)", 7},
		{"retry 4 (+8d)", 15},
		{"grace ends: suspended", 7},
		{"final action: cancel", 15},
	}, got)
}

func TestTimelineFollowsThePolicy(t *testing.T) {
	t.Parallel()
	p := dunning.DefaultPolicy()
	p.MaxRetries, p.RetryBase, p.RetryFactor = 2, dunning.Duration(12*time.Hour), 3
	p.DunningWindow, p.FinalAction = dunning.Duration(20*24*time.Hour), dunning.FinalUnpaid
	steps := p.Timeline()
	require.Len(t, steps, 5)
	require.Equal(t, 12*time.Hour, steps[1].At)
	require.Equal(t, "retry 2 (+36h)", steps[2].Label)
	require.Equal(t, 48*time.Hour, steps[2].At)
	last := steps[len(steps)-1]
	require.Equal(t, dunning.StepFinal, last.Kind)
	require.Equal(t, 20*24*time.Hour, last.At, "the final action waits for the dunning window")
	require.Equal(t, "final action: unpaid", last.Label)
}
