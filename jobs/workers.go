package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/clock"
)

// early snoozes a job that a replica's wall clock started before its domain due time.
func early(c clock.Clock, due time.Time) error {
	if wait := due.Sub(c.Now()); wait > 0 {
		return river.JobSnooze(min(wait, time.Hour))
	}
	return nil
}

// domainArgs are the job arguments of billing's due work: all share WorkArgs' shape.
type domainArgs interface {
	river.JobArgs
	~struct {
		ID  string    `json:"id"`
		Due time.Time `json:"due"`
	}
}

// domainWorker runs one kind of billing's due work: snooze if early, else call billing once. The row,
// not the job, says whether the work is still due, so a rerun is a no-op.
type domainWorker[T domainArgs] struct {
	river.WorkerDefaults[T]
	c   clock.Clock
	run func(ctx context.Context, id string) error
}

func (w *domainWorker[T]) Work(ctx context.Context, j *river.Job[T]) error {
	a := WorkArgs(j.Args)
	if err := early(w.c, a.Due); err != nil {
		return err
	}
	return w.run(ctx, a.ID)
}

// addDomainWorkers registers a worker for every kind of billing's due work.
func addDomainWorkers(workers *river.Workers, b *billing.Service, c clock.Clock, batchSize int) {
	river.AddWorker(workers, &domainWorker[RenewArgs]{c: c, run: func(ctx context.Context, id string) error {
		_, err := b.Renew(ctx, id)
		return err
	}})
	river.AddWorker(workers, &renewBatchWorker{b: b, size: batchSize, budget: renewBatchBudget})
	river.AddWorker(workers, &domainWorker[CollectArgs]{c: c, run: func(ctx context.Context, id string) error {
		_, err := b.Collect(ctx, id, billing.CollectOptions{})
		return err
	}})
	river.AddWorker(workers, &domainWorker[ResolveAttemptArgs]{c: c, run: func(ctx context.Context, id string) error {
		_, err := b.ResolveAttempt(ctx, id, billing.ResolveOptions{})
		return err
	}})
	river.AddWorker(workers, &domainWorker[ResolveRefundArgs]{c: c, run: b.ResolveRefund})
	river.AddWorker(workers, &domainWorker[GraceEndArgs]{c: c, run: b.EndGrace})
	river.AddWorker(workers, &domainWorker[DunningEndArgs]{c: c, run: b.EndDunning})
	river.AddWorker(workers, &domainWorker[ExpireIncompleteArgs]{c: c, run: b.ExpireIncomplete})
}

// renewBatchWorker renews batches of due subscriptions until none is left or its time is up; then it
// snoozes for zero seconds, which puts it straight back in the queue (without counting an attempt), so a
// long billing day is a chain of short job runs that River can rescue and replicas can share.
type renewBatchWorker struct {
	river.WorkerDefaults[RenewBatchArgs]
	b      *billing.Service
	size   int
	budget time.Duration
}

func (w *renewBatchWorker) Work(ctx context.Context, _ *river.Job[RenewBatchArgs]) error {
	start := time.Now()
	for {
		res, err := w.b.RenewBatch(ctx, w.size)
		if err != nil {
			return err
		}
		if res.Claimed < w.size {
			return nil // nothing more is due (or other slots hold the rest)
		}
		if time.Since(start) > w.budget {
			return river.JobSnooze(0)
		}
	}
}

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	s *Sweeper
}

func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	_, err := w.s.Sweep(ctx)
	return err
}
