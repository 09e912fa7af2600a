package jobs

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/idem"
	"github.com/dunningworks/billing/internal/store"
)

// IdempotencyReapInterval is how often stored Idempotency-Keys past their retention are deleted.
const IdempotencyReapInterval = time.Hour

// IdempotencyReapArgs is the periodic job that deletes Idempotency-Keys older than idem.Retention.
type IdempotencyReapArgs struct{}

// Kind is River's job kind.
func (IdempotencyReapArgs) Kind() string { return "idempotency_reap" }

// InsertOpts keeps one reap waiting at a time, however many replicas' leaders enqueue it.
func (IdempotencyReapArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness}
}

// idempotencyReapWorker runs on the wall clock, not the domain clock: key retention is about how long a
// client may retry an HTTP request, which the test clock's jumps through billing months must not cut short.
type idempotencyReapWorker struct {
	river.WorkerDefaults[IdempotencyReapArgs]
	pool  *pgxpool.Pool
	clock clock.Clock
}

func newIdempotencyReapWorker(pool *pgxpool.Pool) *idempotencyReapWorker {
	return &idempotencyReapWorker{pool: pool, clock: clock.System{}}
}

func (w *idempotencyReapWorker) Work(ctx context.Context, _ *river.Job[IdempotencyReapArgs]) error {
	_, err := reapIdempotencyKeys(ctx, w.pool, w.clock.Now().Add(-idem.Retention))
	return err
}

// reapIdempotencyKeys deletes keys created before before, in batches, and returns how many went.
func reapIdempotencyKeys(ctx context.Context, pool *pgxpool.Pool, before time.Time) (int64, error) {
	const batch = 5000
	var total int64
	for {
		n, err := store.New(pool).ReapIdempotencyKeys(ctx, store.ReapIdempotencyKeysParams{Before: before, Batch: batch})
		total += n
		if err != nil {
			return total, err
		}
		if n < batch {
			return total, nil
		}
	}
}

func idempotencyReapJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(IdempotencyReapInterval),
		func() (river.JobArgs, *river.InsertOpts) { return IdempotencyReapArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
