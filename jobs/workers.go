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

type renewWorker struct {
	river.WorkerDefaults[RenewArgs]
	b *billing.Service
	c clock.Clock
}

func (w *renewWorker) Work(ctx context.Context, j *river.Job[RenewArgs]) error {
	if err := early(w.c, j.Args.Due); err != nil {
		return err
	}
	_, err := w.b.Renew(ctx, j.Args.ID)
	return err
}

type collectWorker struct {
	river.WorkerDefaults[CollectArgs]
	b *billing.Service
	c clock.Clock
}

func (w *collectWorker) Work(ctx context.Context, j *river.Job[CollectArgs]) error {
	if err := early(w.c, j.Args.Due); err != nil {
		return err
	}
	_, err := w.b.Collect(ctx, j.Args.ID, billing.CollectOptions{})
	return err
}

type resolveWorker struct {
	river.WorkerDefaults[ResolveAttemptArgs]
	b *billing.Service
	c clock.Clock
}

func (w *resolveWorker) Work(ctx context.Context, j *river.Job[ResolveAttemptArgs]) error {
	if err := early(w.c, j.Args.Due); err != nil {
		return err
	}
	_, err := w.b.ResolveAttempt(ctx, j.Args.ID, billing.ResolveOptions{})
	return err
}

type graceEndWorker struct {
	river.WorkerDefaults[GraceEndArgs]
	b *billing.Service
	c clock.Clock
}

func (w *graceEndWorker) Work(ctx context.Context, j *river.Job[GraceEndArgs]) error {
	if err := early(w.c, j.Args.Due); err != nil {
		return err
	}
	return w.b.EndGrace(ctx, j.Args.ID)
}

type dunningEndWorker struct {
	river.WorkerDefaults[DunningEndArgs]
	b *billing.Service
	c clock.Clock
}

func (w *dunningEndWorker) Work(ctx context.Context, j *river.Job[DunningEndArgs]) error {
	if err := early(w.c, j.Args.Due); err != nil {
		return err
	}
	return w.b.EndDunning(ctx, j.Args.ID)
}

type expireWorker struct {
	river.WorkerDefaults[ExpireIncompleteArgs]
	b *billing.Service
	c clock.Clock
}

func (w *expireWorker) Work(ctx context.Context, j *river.Job[ExpireIncompleteArgs]) error {
	if err := early(w.c, j.Args.Due); err != nil {
		return err
	}
	return w.b.ExpireIncomplete(ctx, j.Args.ID)
}

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	s *Sweeper
}

func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	_, err := w.s.Sweep(ctx)
	return err
}
