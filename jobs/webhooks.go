package jobs

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/dbx"
)

// WebhookWatchInterval is how often the leader re-enqueues inbox rows whose processing job was lost and
// checks whether a gateway's webhooks went silent.
const WebhookWatchInterval = 30 * time.Second

// inboxDispatchTick is how often a dispatcher looks for inbox rows without being woken: rows stored by a
// replica that died before its dispatcher claimed them. (The leader's watch claims them too.)
const inboxDispatchTick = 2 * time.Second

// inboxDispatchBatch is how many rows one dispatch transaction claims at most.
const inboxDispatchBatch = 500

// DispatchInbox enqueues the processing jobs of received webhooks until ctx ends: at once when this
// process stores an event, and every inboxDispatchTick for rows nobody claimed. It runs in every process
// that receives webhooks, beside the HTTP server; receipt itself only inserts the row.
func (r *Runner) DispatchInbox(ctx context.Context) {
	b, log := r.cfg.Billing, jobLogger(r.cfg)
	tick := time.NewTicker(inboxDispatchTick)
	defer tick.Stop()
	for {
		for {
			n, err := b.DispatchWebhooks(ctx, inboxDispatchBatch)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("webhook inbox dispatch failed; retrying on the next tick", "err", err)
				}
				break
			}
			if n < inboxDispatchBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-b.WebhookArrivals():
		case <-tick.C:
		}
	}
}

// ProcessWebhookArgs processes one inbox row; ID is billing.WebhookWorkID(gateway, event id).
type ProcessWebhookArgs WorkArgs

// Kind is River's job kind.
func (ProcessWebhookArgs) Kind() string { return string(billing.WorkProcessWebhook) }

// InsertOpts makes the job unique per inbox row while it waits or runs.
func (ProcessWebhookArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness}
}

type processWebhookWorker struct {
	river.WorkerDefaults[ProcessWebhookArgs]
	b *billing.Service
}

func (w *processWebhookWorker) Work(ctx context.Context, j *river.Job[ProcessWebhookArgs]) error {
	gw, eventID, ok := billing.ParseWebhookWorkID(j.Args.ID)
	if !ok {
		return river.JobCancel(errBadWebhookID(j.Args.ID))
	}
	_, err := w.b.ProcessWebhook(ctx, gw, eventID)
	var deferred *billing.WebhookDeferred
	if errors.As(err, &deferred) {
		// Its order was looked up on another event's account moments ago: wait for the window's end,
		// without counting an attempt, when one lookup answers every event that waited.
		return river.JobSnooze(deferred.Wait)
	}
	return err
}

type errBadWebhookID string

func (e errBadWebhookID) Error() string { return "malformed webhook job id " + string(e) }

// WebhookWatchArgs is the periodic job behind the inbox sweep and the silence alert.
type WebhookWatchArgs struct{}

// Kind is River's job kind.
func (WebhookWatchArgs) Kind() string { return "webhook_watch" }

// InsertOpts keeps one watch waiting at a time.
func (WebhookWatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness}
}

// webhookWatchWorker enqueues inbox rows no dispatcher claimed (a replica that stored them died) and
// re-enqueues dispatched rows that are still unprocessed (principle 1: the table is the truth, a lost job
// is recreated) and logs once, on each change, when a gateway's webhooks go silent or come back.
type webhookWatchWorker struct {
	river.WorkerDefaults[WebhookWatchArgs]
	b        *billing.Service
	r        *Runner
	gateways []string
	alerts   *silenceAlerts
}

func (w *webhookWatchWorker) Work(ctx context.Context, _ *river.Job[WebhookWatchArgs]) error {
	for {
		n, err := w.b.DispatchWebhooks(ctx, inboxDispatchBatch)
		if err != nil {
			return err
		}
		if n < inboxDispatchBatch {
			break
		}
	}
	due, err := w.b.DueWebhooks(ctx, w.b.Now(), 1000)
	if err != nil {
		return err
	}
	if len(due) > 0 {
		sched := w.r.Scheduler()
		if err := dbx.InTx(ctx, w.r.cfg.Pool, func(tx pgx.Tx) error { return sched.ScheduleTx(ctx, tx, due...) }); err != nil {
			return err
		}
	}
	health, err := w.b.WebhookHealth(ctx, w.gateways)
	if err != nil {
		return err
	}
	w.alerts.observe(ctx, health)
	return nil
}

// silenceAlerts remembers, per gateway, whether it was last seen silent, so the log says it once per
// change rather than every half minute.
type silenceAlerts struct {
	log    *slog.Logger
	mu     sync.Mutex
	silent map[string]bool
}

func newSilenceAlerts(log *slog.Logger) *silenceAlerts {
	return &silenceAlerts{log: log, silent: map[string]bool{}}
}

func (a *silenceAlerts) observe(ctx context.Context, health []billing.WebhookHealth) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range health {
		was := a.silent[h.Gateway]
		a.silent[h.Gateway] = h.Silent
		switch {
		case h.Silent && !was:
			a.log.WarnContext(ctx, "gateway webhooks silent: charges were made but no webhook arrived for an hour; polling still settles every attempt",
				"alert", "webhooks_silent", "gateway", h.Gateway, "charges_last_hour", h.Charges, "last_webhook_at", h.LastReceivedAt)
		case !h.Silent && was:
			a.log.InfoContext(ctx, "gateway webhooks arriving again", "alert", "webhooks_silent", "gateway", h.Gateway, "last_webhook_at", h.LastReceivedAt)
		}
	}
}

// webhookSilenceCollector exposes billing_webhooks_silent{gateway} computed at scrape time from the
// tables, so every replica reports the same truth and none reports a stale value it set long ago.
type webhookSilenceCollector struct {
	b        *billing.Service
	gateways []string
	log      *slog.Logger
	desc     *prometheus.Desc
}

func newWebhookSilenceCollector(b *billing.Service, gateways []string, log *slog.Logger) *webhookSilenceCollector {
	return &webhookSilenceCollector{b: b, gateways: gateways, log: log, desc: prometheus.NewDesc("billing_webhooks_silent",
		"1 when charges were made at the gateway in the last hour and no webhook arrived from it for an hour (domain clock).",
		[]string{"gateway"}, nil)}
}

func (c *webhookSilenceCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *webhookSilenceCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	health, err := c.b.WebhookHealth(ctx, c.gateways)
	if err != nil {
		c.log.Warn("webhook silence metric unavailable", "err", err)
		return
	}
	for _, h := range health {
		v := 0.0
		if h.Silent {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, h.Gateway)
	}
}

// WebhookExpiryInterval is how often processed inbox rows past their retention are deleted.
const WebhookExpiryInterval = time.Hour

// DefaultWebhookRetention is how long a processed inbox row is kept when Config.WebhookRetention is zero
// (BILLING_WEBHOOK_RETENTION's default).
const DefaultWebhookRetention = 30 * 24 * time.Hour

// WebhookExpireArgs is the periodic job that deletes processed inbox rows older than the retention.
type WebhookExpireArgs struct{}

// Kind is River's job kind.
func (WebhookExpireArgs) Kind() string { return "webhook_inbox_expire" }

// InsertOpts keeps one expiry waiting at a time.
func (WebhookExpireArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness}
}

// webhookExpireWorker deletes inbox rows processed more than retention ago. It runs on the domain clock,
// which stamped the rows: under the test clock, rows of months the clock moved through expire like rows
// of real months would.
type webhookExpireWorker struct {
	river.WorkerDefaults[WebhookExpireArgs]
	b         *billing.Service
	retention time.Duration
	log       *slog.Logger
}

func (w *webhookExpireWorker) Work(ctx context.Context, _ *river.Job[WebhookExpireArgs]) error {
	n, err := w.b.ExpireWebhooks(ctx, w.b.Now().Add(-w.retention))
	if n > 0 {
		w.log.InfoContext(ctx, "expired processed webhook inbox rows", "rows", n, "retention", w.retention.String())
	}
	return err
}

// addWebhookWorkers registers inbox processing, the watch and the expiry, and returns their periodic jobs.
func addWebhookWorkers(workers *river.Workers, r *Runner, log *slog.Logger) []*river.PeriodicJob {
	cfg := r.cfg
	river.AddWorker(workers, &processWebhookWorker{b: cfg.Billing})
	river.AddWorker(workers, &webhookWatchWorker{b: cfg.Billing, r: r, gateways: cfg.Gateways, alerts: newSilenceAlerts(log)})
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(newWebhookSilenceCollector(cfg.Billing, cfg.Gateways, log),
			newOperationsCollector(cfg.Billing, cfg.Pool, cfg.Gateways, log))
	}
	retention := cfg.WebhookRetention
	if retention <= 0 {
		retention = DefaultWebhookRetention
	}
	river.AddWorker(workers, &webhookExpireWorker{b: cfg.Billing, retention: retention, log: log})
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(WebhookWatchInterval),
			func() (river.JobArgs, *river.InsertOpts) { return WebhookWatchArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true}),
		river.NewPeriodicJob(river.PeriodicInterval(WebhookExpiryInterval),
			func() (river.JobArgs, *river.InsertOpts) { return WebhookExpireArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true}),
	}
}

func jobLogger(cfg Config) *slog.Logger {
	if cfg.Log == nil {
		return slog.Default()
	}
	return cfg.Log
}
