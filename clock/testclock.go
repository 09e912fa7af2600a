package clock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dunningworks/billing/internal/store"
)

// ErrBackwards is returned when an advance targets a time before the clock's current time.
var ErrBackwards = errors.New("the test clock only moves forward")

// TestClock is the persisted test clock: one row in Postgres that every replica reads, so several
// billingd processes agree on "now". It starts at the wall-clock time of its first use and only moves
// forward, through Advance. A non-zero start is where a new clock begins instead (tests start at a fixed
// instant, so none depends on the day it runs); an existing clock keeps its time.
type TestClock struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	mu   sync.Mutex
	last time.Time
	// readAt is the wall time last was read from (or written to) the database, for Recent.
	readAt time.Time
}

// NewTestClock loads (creating on first use) the persisted test clock. It reads through a small pool of
// its own: domain code asks for the time while holding a transaction, and if the clock shared the
// service's pool, a full pool of transactions would each wait for one more connection to read the clock.
func NewTestClock(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger, start time.Time) (*TestClock, error) {
	cfg := pool.Config().Copy()
	cfg.MaxConns, cfg.MinConns = 4, 1
	own, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("test clock pool: %w", err)
	}
	if start.IsZero() {
		start = time.Now()
	}
	now, err := store.New(own).InitTestClock(ctx, start.UTC().Truncate(time.Second))
	if err != nil {
		own.Close()
		return nil, fmt.Errorf("init test clock: %w", err)
	}
	return &TestClock{pool: own, log: log, last: now.UTC()}, nil
}

// Close releases the clock's connections.
func (c *TestClock) Close() { c.pool.Close() }

// Now reads the persisted clock. Reading it every time (a primary-key lookup) is what lets replicas agree
// right after an advance; if the database cannot answer, the last value read is the best we know.
func (c *TestClock) Now() time.Time {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now, err := store.New(c.pool).GetTestClock(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.log.Warn("test clock read failed; using the last value", "err", err)
		return c.last
	}
	if now.After(c.last) {
		c.last = now.UTC()
	}
	c.readAt = time.Now()
	return c.last
}

// Recent is the value read within maxAge of wall time, if there is one, else Now. Under load every worker
// reads the clock all the time, so a receipt stamp costs no database round trip; an idle process reads.
func (c *TestClock) Recent(maxAge time.Duration) time.Time {
	c.mu.Lock()
	if !c.readAt.IsZero() && time.Since(c.readAt) <= maxAge {
		defer c.mu.Unlock()
		return c.last
	}
	c.mu.Unlock()
	return c.Now()
}

// Advance moves the clock to target. A target before now is ErrBackwards; equal is a no-op.
func (c *TestClock) Advance(ctx context.Context, target time.Time) (time.Time, error) {
	now := c.Now()
	if target.Before(now) {
		return now, fmt.Errorf("%w: %s is before %s", ErrBackwards, target.UTC().Format(time.RFC3339), now.Format(time.RFC3339))
	}
	moved, err := store.New(c.pool).AdvanceTestClock(ctx, target.UTC())
	if err != nil {
		return now, fmt.Errorf("advance test clock: %w", err)
	}
	c.mu.Lock()
	c.last = moved.UTC()
	c.readAt = time.Now()
	c.mu.Unlock()
	return moved.UTC(), nil
}
