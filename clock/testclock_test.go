package clock_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/testdb"
)

func TestTestClockIsSharedAndForwardOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	start := time.Date(2027, 1, 31, 15, 0, 0, 0, time.UTC)
	a, err := clock.NewTestClock(ctx, pool, log, start)
	require.NoError(t, err)
	b, err := clock.NewTestClock(ctx, pool, log, start.Add(time.Hour)) // a second replica keeps the clock's time
	require.NoError(t, err)
	require.True(t, a.Now().Equal(start), "a new clock starts at the instant given: %s", a.Now())
	require.Equal(t, start, b.Now())

	target := start.Add(30 * 24 * time.Hour)
	got, err := a.Advance(ctx, target)
	require.NoError(t, err)
	require.True(t, got.Equal(target))
	require.True(t, b.Now().Equal(target), "the other replica sees the advance at once")

	_, err = b.Advance(ctx, start)
	require.ErrorIs(t, err, clock.ErrBackwards)
	require.True(t, a.Now().Equal(target))

	same, err := b.Advance(ctx, target)
	require.NoError(t, err)
	require.True(t, same.Equal(target))
}

// Recent answers from the last reading while it is fresh enough (a receipt stamp need not queue for the
// clock's connections) and reads the row when it is not; a clock in memory just answers.
func TestRecentReusesAFreshReading(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := time.Date(2027, 2, 28, 12, 0, 0, 0, time.UTC)
	a, err := clock.NewTestClock(ctx, pool, log, start)
	require.NoError(t, err)
	b, err := clock.NewTestClock(ctx, pool, log, start)
	require.NoError(t, err)

	require.True(t, a.Now().Equal(start))
	_, err = b.Advance(ctx, start.Add(time.Hour)) // another replica moves the clock
	require.NoError(t, err)
	require.True(t, clock.Recent(a, time.Hour).Equal(start), "a fresh reading is reused")
	require.True(t, clock.Recent(a, 0).Equal(start.Add(time.Hour)), "a stale one is read again")
	require.True(t, clock.Recent(a, time.Hour).Equal(start.Add(time.Hour)), "and that reading is the fresh one now")

	fixed := clock.NewFixed(start)
	require.True(t, clock.Recent(fixed, time.Hour).Equal(start))
}
