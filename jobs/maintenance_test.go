package jobs

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/testdb"
)

type blockArgs struct{ N int }

func (blockArgs) Kind() string { return "test_block" }

type blockWorker struct {
	river.WorkerDefaults[blockArgs]
	release chan struct{}
}

func (w *blockWorker) Work(ctx context.Context, _ *river.Job[blockArgs]) error {
	select {
	case <-w.release:
	case <-ctx.Done():
	}
	return nil
}

type tickArgs struct{}

func (tickArgs) Kind() string { return "test_tick" }

type tickWorker struct {
	river.WorkerDefaults[tickArgs]
	ran chan struct{}
}

func (w *tickWorker) Work(context.Context, *river.Job[tickArgs]) error {
	select {
	case w.ran <- struct{}{}:
	default:
	}
	return nil
}

// A periodic job runs while the default queue is jammed with a backlog (billing day), because it is
// inserted on the maintenance queue; other jobs stay on the default queue.
func TestPeriodicJobsRunBesideADefaultQueueBacklog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	workers := river.NewWorkers()
	block := &blockWorker{release: make(chan struct{})}
	tick := &tickWorker{ran: make(chan struct{}, 1)}
	river.AddWorker(workers, block)
	river.AddWorker(workers, tick)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1},
			QueueMaintenance: {MaxWorkers: maintenanceWorkers}},
		Middleware:        []rivertype.Middleware{&periodicOnMaintenance{}},
		Workers:           workers,
		FetchCooldown:     time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
			func() (river.JobArgs, *river.InsertOpts) { return tickArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true})},
	})
	require.NoError(t, err)
	// The backlog: the one default worker is stuck on the first job, 50 more wait behind it.
	backlog := make([]river.InsertManyParams, 51)
	for i := range backlog {
		backlog[i] = river.InsertManyParams{Args: blockArgs{N: i}}
	}
	_, err = client.InsertMany(ctx, backlog)
	require.NoError(t, err)

	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		close(block.release)
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(sctx)
	})
	select {
	case <-tick.ran:
	case <-time.After(15 * time.Second):
		t.Fatal("the periodic job did not run while the default queue was backed up")
	}
	var queue string
	require.NoError(t, pool.QueryRow(ctx, `SELECT queue FROM river_job WHERE kind = 'test_tick'`).Scan(&queue))
	require.Equal(t, QueueMaintenance, queue)
	var onDefault int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'test_block' AND queue = $1`, river.QueueDefault).Scan(&onDefault))
	require.Equal(t, 51, onDefault, "jobs that are not periodic stay where they were inserted")
}

func TestIsPeriodicReadsRiversMetadataFlag(t *testing.T) {
	t.Parallel()
	require.True(t, isPeriodic([]byte(`{"river:periodic_job_id":"x","periodic":true}`)))
	require.False(t, isPeriodic([]byte(`{}`)))
	require.False(t, isPeriodic(nil))
	require.False(t, isPeriodic([]byte(`{"periodic":false}`)))
	require.False(t, isPeriodic([]byte(`{"note":"\"periodic\" in a value"}`)))
}

// The sweeper does not re-insert due work while the default queue has a backlog of runnable jobs (on
// billing day those are the due rows' own jobs); once the queue has caught up it sweeps again.
func TestSweepStandsAsideWhileTheQueueHoldsABatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, q := range []string{
		`INSERT INTO customers (id, external_id, email, name, created_at) VALUES ('cus_1', 'e1', 'a@example.com', 'A', $1)`,
		`INSERT INTO plans (id, code, name, amount, currency, interval, interval_count, created_at)
			VALUES ('plan_1', 'p1', 'P', 9900, 'KRW', 'month', 1, $1)`,
		`INSERT INTO subscriptions (id, customer_id, plan_id, status, billing_anchor, current_period_start,
			current_period_end, next_renewal_at, created_at, updated_at)
			VALUES ('sub_1', 'cus_1', 'plan_1', 'active', $1::timestamptz - interval '1 month', $1::timestamptz - interval '1 month',
				$1, $1, $1::timestamptz - interval '1 month', $1::timestamptz - interval '1 month')`,
	} {
		_, err := pool.Exec(ctx, q, now)
		require.NoError(t, err)
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{}) // insert-only
	require.NoError(t, err)
	fixed := clock.NewFixed(now.Add(time.Minute))
	sw := &Sweeper{billing: billing.New(billing.Config{Pool: pool, Clock: fixed}), clock: fixed, pool: pool,
		sched: &Scheduler{client: client, clock: fixed}}
	renewJobs := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'renew_batch'`).Scan(&n))
		return n
	}

	backlog := make([]river.InsertManyParams, sweepBacklog)
	for i := range backlog {
		backlog[i] = river.InsertManyParams{Args: blockArgs{N: i}}
	}
	_, err = client.InsertManyFast(ctx, backlog)
	require.NoError(t, err)
	n, err := sw.Sweep(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Zero(t, renewJobs(), "no sweep while the queue is behind")

	_, err = pool.Exec(ctx, `DELETE FROM river_job WHERE id IN (SELECT id FROM river_job WHERE kind = 'test_block' LIMIT 1)`)
	require.NoError(t, err)
	n, err = sw.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 1, renewJobs(), "once the queue has caught up, a batch job for the due renewal is enqueued")
}

type orderWorker[T river.JobArgs] struct {
	river.WorkerDefaults[T]
	ran chan<- string
}

func (w *orderWorker[T]) Work(_ context.Context, j *river.Job[T]) error {
	w.ran <- j.Kind
	return nil
}

// A lookup that falls due during a renewal backlog runs before the renewals still waiting, though it
// was enqueued after all of them.
func TestLookupsRunAheadOfARenewalBacklog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	ran := make(chan string, 100)
	workers := river.NewWorkers()
	river.AddWorker(workers, &orderWorker[RenewArgs]{ran: ran})
	river.AddWorker(workers, &orderWorker[ResolveAttemptArgs]{ran: ran})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
		Workers:           workers,
		FetchCooldown:     time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
	})
	require.NoError(t, err)
	now := time.Now()
	s := &Scheduler{client: client, clock: clock.NewFixed(now)}
	// Renew jobs of one subscription each, as billingd queued them before batch renewals (and as one may
	// still find them in a queue after an upgrade): renewals' priority is theirs and the batches'.
	var backlog []river.InsertManyParams
	for i := range 20 {
		backlog = append(backlog, river.InsertManyParams{Args: RenewArgs{ID: fmt.Sprintf("sub_%d", i), Due: now.Add(-time.Minute)}})
	}
	_, err = client.InsertMany(ctx, backlog)
	require.NoError(t, err)
	require.NoError(t, dbx.InTx(ctx, pool, func(tx pgx.Tx) error {
		return s.ScheduleTx(ctx, tx, billing.Work{Kind: billing.WorkResolveAttempt, ID: "pay_1", At: now})
	}))

	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(sctx)
	})
	select {
	case kind := <-ran:
		require.Equal(t, string(billing.WorkResolveAttempt), kind, "the lookup goes first")
	case <-time.After(15 * time.Second):
		t.Fatal("no job ran")
	}
}
