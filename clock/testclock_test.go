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
