package jobs

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/testdb"
)

// A recovered subscription's queued grace end and dunning end are withdrawn in the recovering
// transaction; its other work and other subscriptions' work stay queued.
func TestCancelTxWithdrawsOnlyTheNamedQueuedWork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{}) // insert-only
	require.NoError(t, err)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := &Scheduler{client: client, clock: clock.NewFixed(now)}

	later := now.Add(7 * 24 * time.Hour)
	require.NoError(t, dbx.InTx(ctx, pool, func(tx pgx.Tx) error {
		return s.ScheduleTx(ctx, tx,
			billing.Work{Kind: billing.WorkGraceEnd, ID: "sub_a", At: later},
			billing.Work{Kind: billing.WorkDunningEnd, ID: "sub_a", At: later},
			billing.Work{Kind: billing.WorkDunningEnd, ID: "sub_a", At: later.Add(time.Hour)},
			billing.Work{Kind: billing.WorkRenew, ID: "sub_a", At: later},
			billing.Work{Kind: billing.WorkGraceEnd, ID: "sub_b", At: later},
			billing.Work{Kind: billing.WorkCollect, ID: "inv_1", At: now})
	}))

	// A rolled-back cancel withdraws nothing.
	_ = dbx.InTx(ctx, pool, func(tx pgx.Tx) error {
		require.NoError(t, s.CancelTx(ctx, tx, "sub_a", billing.WorkGraceEnd, billing.WorkDunningEnd))
		return context.Canceled
	})
	require.Equal(t, 0, countState(t, pool, "cancelled"))

	require.NoError(t, dbx.InTx(ctx, pool, func(tx pgx.Tx) error {
		return s.CancelTx(ctx, tx, "sub_a", billing.WorkGraceEnd, billing.WorkDunningEnd)
	}))
	rows, err := pool.Query(ctx, `SELECT kind || '/' || (args->>'id') FROM river_job WHERE state = 'cancelled' ORDER BY 1`)
	require.NoError(t, err)
	cancelled, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"dunning_end/sub_a", "dunning_end/sub_a", "grace_end/sub_a"}, cancelled)
	require.Equal(t, 2, countState(t, pool, "scheduled")+countState(t, pool, "available"),
		"grace_end/sub_b, collect/inv_1 (a renewal due later has no job: its column is swept when it falls due)")

	require.NoError(t, dbx.InTx(ctx, pool, func(tx pgx.Tx) error { return s.CancelTx(ctx, tx, "sub_nobody", billing.WorkGraceEnd) }))
	require.NoError(t, dbx.InTx(ctx, pool, func(tx pgx.Tx) error { return s.CancelTx(ctx, tx, "sub_a") }))
	require.Equal(t, 3, countState(t, pool, "cancelled"))
}

func countState(t *testing.T, pool interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, state string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE state = $1`, state).Scan(&n))
	return n
}

// Renewals are not a job each: due ones become a share of a few batch jobs (unique per slot), later ones
// are left to their column.
func TestDueRenewalsBecomeBatchJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{}) // insert-only
	require.NoError(t, err)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := &Scheduler{client: client, clock: clock.NewFixed(now)}
	due := func(n int) []billing.Work {
		var w []billing.Work
		for i := range n {
			w = append(w, billing.Work{Kind: billing.WorkRenew, ID: fmt.Sprintf("sub_%d", i), At: now.Add(-time.Second)})
		}
		return append(w, billing.Work{Kind: billing.WorkRenew, ID: "sub_later", At: now.Add(time.Hour)})
	}
	batchJobs := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'renew_batch'`).Scan(&n))
		return n
	}
	require.NoError(t, dbx.InTx(ctx, pool, func(tx pgx.Tx) error { return s.ScheduleTx(ctx, tx, due(renewBatchSize+1)...) }))
	require.Equal(t, 2, batchJobs(), "251 due renewals: two batches")
	require.NoError(t, dbx.InTx(ctx, pool, func(tx pgx.Tx) error { return s.ScheduleTx(ctx, tx, due(100*renewBatchSize)...) }))
	require.Equal(t, renewBatchJobs, batchJobs(), "at most renewBatchJobs, one per slot, never duplicated")
	require.Zero(t, countState(t, pool, "scheduled"), "no job for the renewal due later")
}
