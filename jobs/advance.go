package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/clock"
)

// advanceLock is the advisory lock key that serializes test-clock advances across replicas.
const advanceLock = 7_264_001

// Advancer moves the test clock like Stripe's test clocks: step by step through every time at which
// domain work falls due (a renewal, a retry, a grace end, ...), enqueueing that work and letting the
// workers settle before the next step, so a year renews twelve times in order and a dunning timeline
// unfolds at its own dates instead of all at once at the target.
type Advancer struct {
	Clock   *clock.TestClock
	Billing *billing.Service
	Sweeper *Sweeper
	Pool    *pgxpool.Pool
	Log     *slog.Logger
	// SettleTimeout bounds the wait for the workers at each step.
	SettleTimeout time.Duration
	// JobTimeout is River's job timeout: a job "running" for longer was orphaned by a dead replica.
	JobTimeout time.Duration

	mu sync.Mutex
}

// Advance moves the clock to target and returns the new time.
func (a *Advancer) Advance(ctx context.Context, target time.Time) (time.Time, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	conn, err := a.Pool.Acquire(ctx)
	if err != nil {
		return time.Time{}, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", advanceLock); err != nil {
		return time.Time{}, err
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", advanceLock) }()

	now := a.Clock.Now()
	if target.Before(now) {
		return now, fmt.Errorf("%w: %s is before %s", clock.ErrBackwards, target.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	for {
		if err := a.step(ctx, now); err != nil {
			return now, err
		}
		next, ok, err := a.nextDue(ctx, now)
		if err != nil {
			return now, err
		}
		if !ok || next.After(target) {
			break
		}
		if now, err = a.Clock.Advance(ctx, next); err != nil {
			return now, err
		}
	}
	if now.Before(target) {
		if now, err = a.Clock.Advance(ctx, target); err != nil {
			return now, err
		}
		if err := a.step(ctx, now); err != nil {
			return now, err
		}
	}
	return now, nil
}

// nextDue is the earliest time after now at which domain work or an upcoming-renewal notice falls due.
func (a *Advancer) nextDue(ctx context.Context, now time.Time) (time.Time, bool, error) {
	next, ok, err := a.Billing.NextDue(ctx, now)
	if err != nil {
		return next, ok, err
	}
	notice, nok, err := a.Billing.NextRenewalNotice(ctx, now)
	if err != nil {
		return next, ok, err
	}
	if nok && (!ok || notice.Before(next)) {
		return notice, true, nil
	}
	return next, ok, nil
}

// step enqueues what is due at now and waits until the workers have drained it. Work that stays due
// after it ran (a bug, or a gateway refusing for now) is left to the sweeper after a few rounds, so one
// stuck item cannot stall the clock.
func (a *Advancer) step(ctx context.Context, now time.Time) error {
	// The notices due at now, before the work due at now: a notice tells of a renewal days ahead.
	if _, err := sendRenewalNotices(ctx, a.Billing); err != nil {
		return err
	}
	for round := 0; ; round++ {
		if round == 20 {
			a.Log.Warn("test clock: work is still due after 20 rounds at this instant; moving on", "now", now)
			return nil
		}
		n, err := a.Sweeper.SweepAt(ctx, now)
		if err != nil {
			return err
		}
		if err := a.settle(ctx); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		// Work done at this instant may have made more work due at this instant (a chained renewal,
		// a technical retry): sweep again until nothing is due.
		again, err := a.Billing.DueWork(ctx, now, 1)
		if err != nil {
			return err
		}
		if len(again) == 0 {
			return nil
		}
	}
}

// settle waits until no domain job is runnable or running (jobs snoozed or backing off for more than a
// couple of seconds do not count: their rows keep them due, and the next sweep finds them).
func (a *Advancer) settle(ctx context.Context) error {
	timeout := a.SettleTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		var busy int
		// A job "running" for longer than any healthy job runs (its timeout) was orphaned by a dead
		// replica: River rescues it later, and waiting for it would stall the clock.
		orphan := a.JobTimeout
		if orphan == 0 {
			orphan = 30 * time.Second
		}
		err := a.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job
			WHERE kind <> 'sweep' AND (state IN ('available', 'pending')
			   OR (state = 'running' AND attempted_at > now() - make_interval(secs => $1))
			   OR (state IN ('scheduled', 'retryable') AND scheduled_at <= now() + interval '2 seconds'))`, orphan.Seconds()).Scan(&busy)
		if err != nil {
			return err
		}
		if busy == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			a.Log.Warn("test clock: workers did not settle; moving on", "busy_jobs", busy)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
