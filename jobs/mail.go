package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/dunningworks/billing/mail"
)

// MailDispatchArgs is the leader's periodic job that enqueues the customer emails that are due.
type MailDispatchArgs struct{}

func (MailDispatchArgs) Kind() string { return "mail_dispatch" }
func (MailDispatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness}
}

// MailSendArgs makes one attempt of one customer email. Only the outbox row's id travels.
type MailSendArgs struct {
	ID      int64 `json:"id"`
	Attempt int   `json:"attempt"`
}

func (MailSendArgs) Kind() string { return "mail_send" }

// InsertOpts makes a ticket unique per (email, attempt) while it waits or runs: the dispatcher offers it
// again every tick until the attempt is claimed.
func (MailSendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness}
}

// addMailWorkers registers the email workers and returns the dispatcher's periodic job (none without
// a mail service: customer emails are off).
func addMailWorkers(workers *river.Workers, m *mail.Service) []*river.PeriodicJob {
	if m == nil {
		return nil
	}
	river.AddWorker(workers, &mailDispatchWorker{m: m})
	river.AddWorker(workers, &mailSendWorker{m: m})
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(m.Interval()),
		func() (river.JobArgs, *river.InsertOpts) { return MailDispatchArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})}
}

type mailEnqueuer struct{ client *river.Client[pgx.Tx] }

var _ mail.Enqueuer = (*mailEnqueuer)(nil)

// EnqueueTx inserts one send job per ticket in tx, available now (retry times are the dispatcher's).
func (e *mailEnqueuer) EnqueueTx(ctx context.Context, tx pgx.Tx, tickets ...mail.Ticket) error {
	if len(tickets) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, 0, len(tickets))
	for _, t := range tickets {
		params = append(params, river.InsertManyParams{Args: MailSendArgs{ID: t.ID, Attempt: t.Attempt}})
	}
	if _, err := e.client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("enqueue %d customer emails: %w", len(params), err)
	}
	return nil
}

type mailDispatchWorker struct {
	river.WorkerDefaults[MailDispatchArgs]
	m *mail.Service
}

func (w *mailDispatchWorker) Work(ctx context.Context, _ *river.Job[MailDispatchArgs]) error {
	_, err := w.m.Dispatch(ctx)
	return err
}

type mailSendWorker struct {
	river.WorkerDefaults[MailSendArgs]
	m *mail.Service
}

// Timeout leaves room for the SMTP conversation and the bookkeeping around it (within the row's lease).
func (w *mailSendWorker) Timeout(*river.Job[MailSendArgs]) time.Duration {
	return w.m.Timeout() + 30*time.Second
}

func (w *mailSendWorker) Work(ctx context.Context, j *river.Job[MailSendArgs]) error {
	_, err := w.m.Send(ctx, j.Args.ID, j.Args.Attempt)
	return err
}
