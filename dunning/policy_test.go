package dunning_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/dunning"
)

const day = 24 * time.Hour

func TestDefaultPolicyIsValid(t *testing.T) {
	t.Parallel()
	require.NoError(t, dunning.DefaultPolicy().Validate())
}

// The default backoff is +1d, +2d, +4d, +8d, each within ±10 %, whatever the random draw.
func TestDefaultRetryDelaysGrowWithinJitter(t *testing.T) {
	t.Parallel()
	p := dunning.DefaultPolicy()
	for seed := range uint64(200) {
		rnd := rand.New(rand.NewPCG(seed, seed+1))
		for k, want := range []time.Duration{day, 2 * day, 4 * day, 8 * day} {
			got := p.RetryDelay(k+1, rnd)
			require.InDelta(t, float64(want), float64(got), float64(want)/10, "retry %d", k+1)
		}
	}
	require.Equal(t, 4*day, p.RetryDelay(3, nil), "no randomness, no jitter")
}

func TestAfterDeclineWalksTheDefaultSchedule(t *testing.T) {
	t.Parallel()
	p := dunning.DefaultPolicy()
	p.JitterPercent = 0
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := first
	var retries []int
	for declines := 1; ; declines++ {
		d := p.AfterDecline(dunning.DeclineFacts{Declines: declines, CardAttempts: declines, FirstFailedAt: first, Now: now}, nil)
		if d.Exhausted {
			require.Equal(t, 5, declines, "four retries after the first failure: five attempts in all")
			break
		}
		require.False(t, d.WaitForNewKey)
		now = d.RetryAt
		retries = append(retries, int(now.Sub(first)/day))
	}
	require.Equal(t, []int{1, 3, 7, 15}, retries, "days after the first failure")
}

func TestHardDeclinesAndTheCardCapWaitForANewKey(t *testing.T) {
	t.Parallel()
	p := dunning.DefaultPolicy()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := p.AfterDecline(dunning.DeclineFacts{Hard: true, Declines: 1, FirstFailedAt: now, Now: now}, nil)
	require.True(t, d.WaitForNewKey)
	require.True(t, d.RetryAt.IsZero())
	require.False(t, d.Exhausted, "a hard decline leaves the end to the dunning window")

	d = p.AfterDecline(dunning.DeclineFacts{Declines: 2, CardAttempts: 15, FirstFailedAt: now, Now: now}, nil)
	require.True(t, d.WaitForNewKey)
	require.Contains(t, d.Why, "card cap")
}

func TestTechnicalDelayDoublesUpToItsMax(t *testing.T) {
	t.Parallel()
	p := dunning.DefaultPolicy()
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, p.TechnicalDelay(n))
	}
	require.Equal(t, []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour, time.Hour}, got)
}
