package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/dunningworks/billing/reconcile"
)

// ReconcileCheckInterval is how often the leader checks whether the previous domain day is reconciled.
// Checking hourly (rather than once at midnight) is what makes the daily run survive a restart or an
// outage, and lets it follow the test clock, which does not move with the wall clock.
const ReconcileCheckInterval = time.Hour

// ReconcileDailyArgs reconciles every enabled gateway over the previous domain day, once.
type ReconcileDailyArgs struct{}

// Kind is River's job kind.
func (ReconcileDailyArgs) Kind() string { return "reconcile_daily" }

// InsertOpts keeps one daily reconciliation waiting or running at a time.
func (ReconcileDailyArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness}
}

type reconcileDailyWorker struct {
	river.WorkerDefaults[ReconcileDailyArgs]
	rec      *reconcile.Service
	gateways []string
	timeout  time.Duration
}

func (w *reconcileDailyWorker) Work(ctx context.Context, _ *river.Job[ReconcileDailyArgs]) error {
	_, err := w.rec.RunDaily(ctx, w.gateways)
	return err
}

// Timeout: a day's reconciliation pages through the gateway's list and may look up many orders; the
// client's budget is for domain steps, not reports. River's rescuer also waits this long before it
// retries a run whose replica died.
func (w *reconcileDailyWorker) Timeout(*river.Job[ReconcileDailyArgs]) time.Duration {
	return w.timeout
}

// addReconcileWorkers registers the daily reconciliation (when a reconcile service is configured) and
// returns its periodic job.
func addReconcileWorkers(workers *river.Workers, cfg Config) []*river.PeriodicJob {
	if cfg.Reconcile == nil {
		return nil
	}
	river.AddWorker(workers, &reconcileDailyWorker{rec: cfg.Reconcile, gateways: cfg.Gateways, timeout: cfg.ReconcileTimeout})
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(ReconcileCheckInterval),
		func() (river.JobArgs, *river.InsertOpts) { return ReconcileDailyArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})}
}
