package jobs

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/billing"
)

var _ billing.WorkCanceler = (*Scheduler)(nil)

// CancelTx withdraws, in tx, the queued jobs of the given kinds for one entity: work a state change made
// moot (a recovered subscription's grace end and dunning end). Running jobs are left alone, and so is the
// truth: every job is idempotent and reads its row, so a job this misses simply finds nothing to do.
// The lookup uses River's GIN index on args.
func (s *Scheduler) CancelTx(ctx context.Context, tx pgx.Tx, id string, kinds ...billing.WorkKind) error {
	if len(kinds) == 0 {
		return nil
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	rows, err := tx.Query(ctx, `SELECT id FROM river_job
		WHERE args @> jsonb_build_object('id', $1::text) AND kind = ANY($2)
		  AND state IN ('available', 'scheduled', 'retryable', 'pending')`, id, names)
	if err != nil {
		return fmt.Errorf("find jobs to cancel: %w", err)
	}
	jobIDs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("find jobs to cancel: %w", err)
	}
	for _, jobID := range jobIDs {
		if _, err := s.client.JobCancelTx(ctx, tx, jobID); err != nil {
			return fmt.Errorf("cancel job %d: %w", jobID, err)
		}
	}
	return nil
}
