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

	a, err := clock.NewTestClock(ctx, pool, log)
	require.NoError(t, err)
	b, err := clock.NewTestClock(ctx, pool, log) // a second replica
	require.NoError(t, err)
	start := a.Now()
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
