package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/dunningworks/billing/billing"
)

// RenewalNoticeInterval is how often the leader records the upcoming-renewal notices that fell due. A
// notice is days ahead of its renewal, so a minute late is nothing; a restart or a failover runs one at
// once (RunOnStart), and the renewal_notices fence makes a run that overlaps another harmless.
const RenewalNoticeInterval = time.Minute

// renewalNoticeBatch is how many notices one sweep records at most; a sweep that hit it runs again at
// once.
const renewalNoticeBatch = 500

// RenewalNoticeArgs is the periodic job that records upcoming-renewal notices (billing.SendRenewalNotices:
// an event per (subscription, renewal), whose email package mail sends).
type RenewalNoticeArgs struct{}

// Kind is River's job kind.
func (RenewalNoticeArgs) Kind() string { return "renewal_notice" }

// InsertOpts keeps one sweep waiting at a time, however many replicas' leaders enqueue it.
func (RenewalNoticeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness}
}

// renewalNoticeWorker sweeps on the domain clock (billing's: the test clock when it is on).
type renewalNoticeWorker struct {
	river.WorkerDefaults[RenewalNoticeArgs]
	b *billing.Service
}

func (w *renewalNoticeWorker) Work(ctx context.Context, _ *river.Job[RenewalNoticeArgs]) error {
	_, err := sendRenewalNotices(ctx, w.b)
	return err
}

// sendRenewalNotices records every notice due now, a batch at a time.
func sendRenewalNotices(ctx context.Context, b *billing.Service) (int, error) {
	total := 0
	for {
		n, err := b.SendRenewalNotices(ctx, renewalNoticeBatch)
		total += n
		if err != nil || n < renewalNoticeBatch {
			return total, err
		}
	}
}

func renewalNoticeJob(interval time.Duration) *river.PeriodicJob {
	if interval <= 0 {
		interval = RenewalNoticeInterval
	}
	return river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) { return RenewalNoticeArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
