package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/billingkey"
	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/mail"
	"github.com/dunningworks/billing/notify"
	"github.com/dunningworks/billing/reconcile"
)

// Config builds the job runner.
type Config struct {
	Pool    *pgxpool.Pool
	Billing *billing.Service
	Clock   clock.Clock
	// TestClock is set when domain time is the persisted test clock: then work due in the future is not
	// put on River's wall-clock schedule; the advancer enqueues it when the test clock reaches it.
	TestClock     bool
	Log           *slog.Logger
	Workers       int
	FetchCooldown time.Duration
	// JobTimeout and JobRescueAfter: see config (BILLING_JOB_TIMEOUT, BILLING_JOB_RESCUE_AFTER).
	JobTimeout     time.Duration
	JobRescueAfter time.Duration
	// SweepInterval is how often the leader sweeps for due work whose job is missing.
	SweepInterval time.Duration
	// RenewalNoticeInterval is how often the leader records due upcoming-renewal notices (default
	// RenewalNoticeInterval).
	RenewalNoticeInterval time.Duration
	// Notify delivers outgoing webhooks (nil: no webhook workers).
	Notify *notify.Service
	// Mail sends customer emails (nil: customer emails are off, no mail workers).
	Mail *mail.Service
	// Vault deletes revoked billing keys at their gateways (nil: no deletion worker, keys are revoked
	// locally only).
	Vault *billingkey.Vault
	// Gateways are the enabled gateways' names: the webhook-silence check and the daily reconciliation
	// cover each of them.
	Gateways []string
	// Reconcile runs the daily reconciliation (nil: no reconciliation job).
	Reconcile *reconcile.Service
	// ReconcileTimeout is the daily reconciliation's job timeout (BILLING_RECONCILE_TIMEOUT). River's
	// rescuer leaves a running job alone for its own timeout, so a run orphaned by a dead replica holds
	// the unique slot that long.
	ReconcileTimeout time.Duration
	// WebhookRetention is how long a processed inbox row is kept (BILLING_WEBHOOK_RETENTION; zero:
	// DefaultWebhookRetention).
	WebhookRetention time.Duration
	// Registry receives the jobs' metrics (billing_webhooks_silent); nil registers none.
	Registry prometheus.Registerer
	// RenewBatchSize is how many due subscriptions one renewal batch claims (zero: renewBatchSize). Tests
	// shrink it so that a few dozen subscriptions make several batches per replica.
	RenewBatchSize int
	// NoReindex turns River's nightly REINDEX of its job table off: the service's role does not own the
	// table and so may not (migrations.CanReindexRiver). The schema owner reindexes instead.
	NoReindex bool
}

// Runner owns the River client.
type Runner struct {
	Client  *river.Client[pgx.Tx]
	Sweeper *Sweeper
	cfg     Config
}

// New builds the River client with every worker registered and the scheduler installed in billing.
func New(cfg Config) (*Runner, error) {
	if cfg.Workers == 0 {
		cfg.Workers = 300 // config's default: see BILLING_WORKERS
	}
	if cfg.JobTimeout == 0 {
		cfg.JobTimeout = 30 * time.Second
	}
	if cfg.JobRescueAfter == 0 {
		cfg.JobRescueAfter = 45 * time.Second
	}
	if cfg.ReconcileTimeout == 0 {
		cfg.ReconcileTimeout = 30 * time.Minute
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = 5 * time.Second
	}
	if cfg.FetchCooldown == 0 {
		cfg.FetchCooldown = 5 * time.Millisecond
	}
	r := &Runner{cfg: cfg}
	r.Sweeper = &Sweeper{billing: cfg.Billing, clock: cfg.Clock, pool: cfg.Pool, log: cfg.Log}

	workers := river.NewWorkers()
	b, c := cfg.Billing, cfg.Clock
	addDomainWorkers(workers, b, c, (&Scheduler{renewBatch: cfg.RenewBatchSize}).batchSize())
	river.AddWorker(workers, &sweepWorker{s: r.Sweeper})
	river.AddWorker(workers, newIdempotencyReapWorker(cfg.Pool))
	if cfg.Vault != nil {
		river.AddWorker(workers, &billingKeyDeleteWorker{v: cfg.Vault})
	}
	river.AddWorker(workers, &renewalNoticeWorker{b: b})
	notifyJobs := append(addNotifyWorkers(workers, cfg.Notify), addMailWorkers(workers, cfg.Mail)...)
	inboundJobs := append(addWebhookWorkers(workers, r, jobLogger(cfg)), addReconcileWorkers(workers, cfg)...)

	logger := cfg.Log
	if logger == nil {
		logger = slog.Default()
	}
	client, err := river.NewClient(riverpgxv5.New(cfg.Pool), &river.Config{
		Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers},
			QueueMaintenance: {MaxWorkers: maintenanceWorkers}},
		Middleware:    []rivertype.Middleware{&periodicOnMaintenance{}},
		Workers:       workers,
		FetchCooldown: cfg.FetchCooldown,
		// Jobs are inserted with LISTEN/NOTIFY wake-ups; polling is only the fallback.
		FetchPollInterval: 200 * time.Millisecond,
		// Gateway calls time out in seconds, so no healthy job runs this long.
		JobTimeout: cfg.JobTimeout,
		// A job left running by a killed replica is rescued soon after; the work it carried is idempotent.
		RescueStuckJobsAfter: cfg.JobRescueAfter,
		ReindexerIndexNames:  reindexed(cfg.NoReindex),
		Logger:               riverLogger(logger),
		PeriodicJobs: append([]*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(cfg.SweepInterval),
				func() (river.JobArgs, *river.InsertOpts) { return SweepArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true}),
			idempotencyReapJob(),
			renewalNoticeJob(cfg.RenewalNoticeInterval),
		}, append(notifyJobs, inboundJobs...)...),
	})
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	r.Client = client
	installNotify(client, cfg.Notify)
	if cfg.Mail != nil {
		cfg.Mail.SetEnqueuer(&mailEnqueuer{client: client})
	}
	if cfg.Vault != nil {
		cfg.Vault.SetDeletionQueue(&keyDeletionQueue{client: client})
	}
	r.Sweeper.sched = r.Scheduler()
	cfg.Billing.SetScheduler(r.Scheduler())
	return r, nil
}

// QueueMaintenance is where River's periodic jobs run (the sweeper, webhook fan-out and watch, reapers,
// reconciliation), apart from domain work. On billing day the default queue holds every due renewal, and
// River runs a queue oldest first: a periodic job queued behind that backlog waited for all of it
// (cmd/bench measured every one of them waiting the whole drain), so outgoing webhooks stalled for the
// billing day.
const QueueMaintenance = "maintenance"

// maintenanceWorkers lets every periodic job run at once; they are few and short.
const maintenanceWorkers = 10

// periodicOnMaintenance moves periodic jobs to QueueMaintenance as they are inserted. River marks every
// periodic insert with metadata "periodic": true, so each periodic job, wherever it is declared, is
// covered without its constructor knowing about queues.
type periodicOnMaintenance struct{ river.MiddlewareDefaults }

func (periodicOnMaintenance) InsertMany(ctx context.Context, many []*rivertype.JobInsertParams,
	doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	for _, p := range many {
		if p.Queue == river.QueueDefault && isPeriodic(p.Metadata) {
			p.Queue = QueueMaintenance
		}
	}
	return doInner(ctx)
}

func isPeriodic(metadata []byte) bool {
	if !bytes.Contains(metadata, []byte(`"periodic"`)) {
		return false // the common case (every domain job) costs no JSON decoding
	}
	var m struct {
		Periodic bool `json:"periodic"`
	}
	return json.Unmarshal(metadata, &m) == nil && m.Periodic
}

// Scheduler returns billing's view of the queue.
func (r *Runner) Scheduler() *Scheduler {
	return &Scheduler{client: r.Client, clock: r.cfg.Clock, testClock: r.cfg.TestClock, renewBatch: r.cfg.RenewBatchSize}
}

// Start works jobs until Stop.
func (r *Runner) Start(ctx context.Context) error { return r.Client.Start(ctx) }

// Stop stops fetching, lets running jobs finish within ctx's deadline, then cancels what is left (the
// work is idempotent and its row still says it is due, so a cancelled job is simply done again).
func (r *Runner) Stop(ctx context.Context) error {
	err := r.Client.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return r.Client.StopAndCancel(cctx)
	}
	return err
}

// Scheduler implements billing.Scheduler with River's InsertManyTx.
type Scheduler struct {
	client    *river.Client[pgx.Tx]
	clock     clock.Clock
	testClock bool
	// renewBatch is Config.RenewBatchSize (zero: renewBatchSize).
	renewBatch int
}

// batchSize is how many subscriptions one renewal batch claims.
func (s *Scheduler) batchSize() int {
	if s.renewBatch > 0 {
		return s.renewBatch
	}
	return renewBatchSize
}

var _ billing.Scheduler = (*Scheduler)(nil)

// Batch renewals (billing.RenewBatch): how many subscriptions one batch claims, how many batch jobs run at
// once (each holds a transaction while it writes, then up to renewBatchSize charges in flight: the
// per-gateway bulkhead bounds the sum), and how long one job run renews before it requeues itself.
const (
	renewBatchSize   = 250
	renewBatchJobs   = 4
	renewBatchBudget = 10 * time.Second
)

// ScheduleTx enqueues work in tx. Work already queued is not duplicated. Renewals are not a job each: a
// renewal due now becomes a share of up to renewBatchJobs batch jobs, and one due later is left to its
// column (next_renewal_at), where the sweeper finds it when it falls due.
func (s *Scheduler) ScheduleTx(ctx context.Context, tx pgx.Tx, work ...billing.Work) error {
	if len(work) == 0 {
		return nil
	}
	now := s.clock.Now()
	params := make([]river.InsertManyParams, 0, len(work))
	renewals := 0
	for _, w := range work {
		if w.Kind == billing.WorkRenew {
			if !w.At.After(now) {
				renewals++
			}
			continue
		}
		opts := &river.InsertOpts{UniqueOpts: uniqueness}
		if s.testClock {
			if w.At.After(now) {
				continue // the test clock's advance enqueues it when it falls due
			}
		} else if w.At.After(now) {
			opts.ScheduledAt = w.At
		}
		params = append(params, river.InsertManyParams{Args: argsFor(w), InsertOpts: opts})
	}
	size := s.batchSize()
	for slot := 0; slot < min(renewBatchJobs, (renewals+size-1)/size); slot++ {
		params = append(params, river.InsertManyParams{Args: RenewBatchArgs{Slot: slot}})
	}
	if len(params) == 0 {
		return nil
	}
	if _, err := s.client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("enqueue %d jobs: %w", len(params), err)
	}
	return nil
}

// Sweeper re-enqueues due work from the tables (the source of truth).
type Sweeper struct {
	billing *billing.Service
	clock   clock.Clock
	pool    *pgxpool.Pool
	sched   *Scheduler
	log     *slog.Logger
}

// Sweep enqueues everything due now and returns how many items were due. It stands aside while the
// default queue has a backlog of runnable jobs: the sweeper recovers lost jobs, and during a backlog
// (billing day) the due rows it finds are the ones whose jobs are waiting or running, so sweeping would
// only rewrite their River rows (a conflicting upsert each, up to a batch per kind every interval); work
// that is really lost is found as soon as the queue has caught up.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	var backlog int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM river_job
		WHERE state = 'available' AND queue = $1 LIMIT $2) AS b`, river.QueueDefault, sweepBacklog).Scan(&backlog)
	if err != nil {
		return 0, fmt.Errorf("sweep: queue backlog: %w", err)
	}
	if backlog >= sweepBacklog {
		return 0, nil
	}
	return s.SweepAt(ctx, s.clock.Now())
}

// sweepBatch is how many items of each kind one sweep enqueues at most.
const sweepBatch = 2000

// sweepBacklog is the queue backlog at which the periodic sweep stands aside: more runnable jobs than one
// fetch takes means the workers are behind, not that jobs are missing. (In normal operation a job is
// runnable for milliseconds, so a sweep almost never sees this many.)
const sweepBacklog = 100

// SweepAt enqueues everything due at now, in batches.
func (s *Sweeper) SweepAt(ctx context.Context, now time.Time) (int, error) {
	work, err := s.billing.DueWork(ctx, now, sweepBatch)
	if err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	// A commit per 1,000 jobs: each commit is a WAL flush, and a 1k-due sweep in one transaction is
	// ~13% faster than in two (cmd/bench), while a transaction stays short enough not to hold River's
	// unique keys for long.
	const perTx = 1000
	for i := 0; i < len(work); i += perTx {
		chunk := work[i:min(i+perTx, len(work))]
		if err := dbx.InTx(ctx, s.pool, func(tx pgx.Tx) error { return s.sched.ScheduleTx(ctx, tx, chunk...) }); err != nil {
			return 0, err
		}
	}
	return len(work), nil
}

// riverLogger is River's logger. River reports its producers' job counts at info every few seconds; at our
// info level that drowns the service's own lines, so River speaks at warn and above unless debug is on.
func riverLogger(l *slog.Logger) *slog.Logger {
	l = l.With("component", "river")
	if l.Enabled(context.Background(), slog.LevelDebug) {
		return l
	}
	return slog.New(minLevel{Handler: l.Handler(), min: slog.LevelWarn})
}

// minLevel drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(a), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}

// reindexed is River's reindexer list: its default, or none when the role may not reindex.
func reindexed(off bool) []string {
	if off {
		return []string{}
	}
	return nil
}
