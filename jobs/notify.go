package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/dunningworks/billing/notify"
)

// NotifyDispatchArgs is the leader's periodic webhook job: fan new outbox events out to endpoints and
// enqueue the delivery retries that have come due.
type NotifyDispatchArgs struct{}

func (NotifyDispatchArgs) Kind() string { return "notify_dispatch" }
func (NotifyDispatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness}
}

// NotifyDeliverArgs makes one attempt of one webhook delivery. Only ids travel in the job: the signing
// secret stays sealed in its row.
type NotifyDeliverArgs struct {
	DeliveryID int64 `json:"delivery_id"`
	Attempt    int   `json:"attempt"`
}

func (NotifyDeliverArgs) Kind() string { return "notify_deliver" }

// InsertOpts makes a ticket unique per (delivery, attempt) while it waits or runs: the dispatcher may
// offer it again every tick until the attempt is recorded.
func (NotifyDeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness}
}

// addNotifyWorkers registers the webhook workers and returns the dispatcher's periodic job (none when
// the runner has no notify service).
func addNotifyWorkers(workers *river.Workers, n *notify.Service) []*river.PeriodicJob {
	if n == nil {
		return nil
	}
	river.AddWorker(workers, &notifyDispatchWorker{n: n})
	river.AddWorker(workers, &notifyDeliverWorker{n: n})
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(n.Interval()),
		func() (river.JobArgs, *river.InsertOpts) { return NotifyDispatchArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})}
}

// installNotify gives the notify service its view of the queue.
func installNotify(client *river.Client[pgx.Tx], n *notify.Service) {
	if n != nil {
		n.SetEnqueuer(&notifyEnqueuer{client: client})
	}
}

type notifyEnqueuer struct{ client *river.Client[pgx.Tx] }

var _ notify.Enqueuer = (*notifyEnqueuer)(nil)

// EnqueueTx inserts one delivery job per ticket in tx, available now: delivery times are wall-clock
// retries the dispatcher enqueues when due, so even under the test clock nothing waits on River's
// schedule.
func (e *notifyEnqueuer) EnqueueTx(ctx context.Context, tx pgx.Tx, tickets ...notify.Ticket) error {
	if len(tickets) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, 0, len(tickets))
	for _, t := range tickets {
		params = append(params, river.InsertManyParams{Args: NotifyDeliverArgs{DeliveryID: t.DeliveryID, Attempt: t.Attempt}})
	}
	if _, err := e.client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("enqueue %d webhook deliveries: %w", len(params), err)
	}
	return nil
}

type notifyDispatchWorker struct {
	river.WorkerDefaults[NotifyDispatchArgs]
	n *notify.Service
}

func (w *notifyDispatchWorker) Work(ctx context.Context, _ *river.Job[NotifyDispatchArgs]) error {
	_, err := w.n.FanOut(ctx)
	return err
}

type notifyDeliverWorker struct {
	river.WorkerDefaults[NotifyDeliverArgs]
	n *notify.Service
}

// Timeout leaves room for the request's own timeout and the bookkeeping around it.
func (w *notifyDeliverWorker) Timeout(*river.Job[NotifyDeliverArgs]) time.Duration {
	return w.n.Timeout() + 30*time.Second
}

func (w *notifyDeliverWorker) Work(ctx context.Context, j *river.Job[NotifyDeliverArgs]) error {
	_, err := w.n.Deliver(ctx, j.Args.DeliveryID, j.Args.Attempt)
	return err
}
