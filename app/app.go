// Package app wires billingd from its configuration: the database pool, the clock, gateways, domain
// services, the River client and the HTTP server. Tests build the same App against a test database, so
// what is tested is what runs.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dunningworks/billing/api"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/billingkey"
	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/internal/config"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/jobs"
	"github.com/dunningworks/billing/mail"
	"github.com/dunningworks/billing/migrations"
	"github.com/dunningworks/billing/notify"
	"github.com/dunningworks/billing/portal"
	"github.com/dunningworks/billing/reconcile"
)

// App is one billingd process.
type App struct {
	Config config.Config
	Log    *slog.Logger
	// Pool serves the API (and the console, the test clock's advance); WorkerPool serves River and the
	// domain work it runs. Separate pools keep a request from queueing behind a billing day's workers for
	// a connection.
	Pool       *pgxpool.Pool
	WorkerPool *pgxpool.Pool
	Clock      clock.Clock
	TestClock  *clock.TestClock
	Registry   *prometheus.Registry
	API        *api.Server
	Billing    *billing.Service
	Jobs       *jobs.Runner
	Vault      *billingkey.Vault
	Notify     *notify.Service
	// Mail sends customer emails (nil when BILLING_MAIL_FROM is unset: emails are off).
	Mail      *mail.Service
	Reconcile *reconcile.Service
	Gateways  Gateways
	// Links signs the customer-page links emails carry (GET /c/{token}).
	Links *portal.Signer
	// Receipts renders paid invoices as receipts (HTML data and PDF; the receipt email's attachment).
	Receipts *portal.Receipts
	// Sim is the embedded gateway simulator (nil unless "sim" is enabled without BILLING_SIM_URL), and
	// SimURL the simulator the "sim" gateway talks to.
	Sim    *pgsim.Server
	SimURL string
	// RoleProblems lists what the database role can do that the service's must not (empty when the
	// migrations ran as another role that owns the schema): billingd warns about each at start.
	RoleProblems []string

	simWebhooks bool
	closers     []func()
	// stopping is set when shutdown begins: /readyz then says so, whatever the database answers.
	stopping atomic.Bool
}

// ErrShuttingDown is Ready's answer once the process has begun to shut down.
var ErrShuttingDown = errors.New("shutting down")

// ErrDatabaseUnavailable is Ready's answer when the database cannot be reached; the driver's error (which
// names the user, database and address) goes to the log, not to whoever asks /readyz.
var ErrDatabaseUnavailable = errors.New("database unavailable")

// Options are test seams; production passes none.
type Options struct {
	// Hooks are failpoints on the charge path.
	Hooks billing.Hooks
	// Notify tunes webhook fan-out and delivery (tests shrink the interval and the backoff).
	Notify notify.Tuning
	// Mail tunes customer-email dispatch and delivery; MailHooks are its failpoints (crash tests).
	Mail      mail.Tuning
	MailHooks mail.Hooks
	// MailLinks and MailReceipts stand in for the customer page's signer and the receipt PDFs in tests
	// (nil: none).
	MailLinks    mail.Links
	MailReceipts mail.Receipts
	// SimWebhooks makes the embedded simulator post its payment webhooks to this App's own /webhooks/sim
	// once it listens. Off by default, so tests that hold an attempt unknown are not raced by a hint;
	// `make run` starts pgsim as a process with its own -webhook-url.
	SimWebhooks bool
	// RenewBatchSize is how many due subscriptions one renewal batch claims (zero: the jobs package's
	// default, 250); tests shrink it to make several batches from a few subscriptions.
	RenewBatchSize int
}

// New connects to the database (which must be migrated) and builds every component.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Options) (*App, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	// The policy file is checked before anything connects: a bad file refuses the start at once.
	policies, err := DunningPolicies(cfg)
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Log: log, Registry: prometheus.NewRegistry(), simWebhooks: o.SimWebhooks}
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	apiConns, workerConns := poolSizes(cfg.Role)
	workerCfg := poolCfg.Copy()
	if !strings.Contains(cfg.DatabaseURL, "pool_max_conns") {
		// The URL's pool_max_conns overrides both.
		poolCfg.MaxConns, workerCfg.MaxConns = apiConns, workerConns
	}
	// Tells the idempotency layer whether a request that failed committed anything (dbx.TrackWrites).
	poolCfg.ConnConfig.Tracer = dbx.WriteTracer{}
	for _, p := range []struct {
		dst *(*pgxpool.Pool)
		cfg *pgxpool.Config
	}{{&a.Pool, poolCfg}, {&a.WorkerPool, workerCfg}} {
		*p.dst, err = pgxpool.NewWithConfig(ctx, p.cfg)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("connect to database: %w", err)
		}
		a.closers = append(a.closers, (*p.dst).Close)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.Pool.Ping(pingCtx); err != nil {
		a.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := migrations.Check(ctx, a.Pool); err != nil {
		a.Close()
		return nil, err
	}
	if a.RoleProblems, err = migrations.RoleProblems(ctx, a.Pool); err != nil {
		a.Close()
		return nil, err
	}
	for _, p := range a.RoleProblems {
		log.Warn("the audit log is not append-only for this service: "+p+
			"; run migrations as the schema owner (BILLING_MIGRATION_DATABASE_URL) and the service as another role (DATABASE_URL)", "mode", cfg.Mode)
	}
	reindex, err := migrations.CanReindexRiver(ctx, a.Pool)
	if err != nil {
		a.Close()
		return nil, err
	}
	if !reindex {
		log.Info("River's nightly reindex is off: the service's role does not own river_job (the schema owner reindexes it)")
	}

	// Webhook receipt inserts through a few connections of its own (a bulkhead): a gateway's POST never
	// queues behind API requests or workers (issue 16 measured ~1 s when it shared the workers' pool), and a
	// flood of webhooks cannot take the API's connections. A worker-only replica receives none.
	var inboxPool *pgxpool.Pool
	if cfg.Role != config.RoleWorker {
		inboxCfg := poolCfg.Copy()
		inboxCfg.MaxConns, inboxCfg.MinConns = 8, 1
		if inboxPool, err = pgxpool.NewWithConfig(ctx, inboxCfg); err != nil {
			a.Close()
			return nil, fmt.Errorf("connect to database: %w", err)
		}
		a.closers = append(a.closers, inboxPool.Close)
	}

	a.Clock = clock.System{}
	if cfg.TestClock {
		a.TestClock, err = clock.NewTestClock(ctx, a.Pool, log, cfg.TestClockStart)
		if err != nil {
			a.Close()
			return nil, err
		}
		a.Clock = a.TestClock
		a.closers = append(a.closers, a.TestClock.Close)
		log.Warn("test clock enabled: domain time is the persisted test clock", "now", a.TestClock.Now())
	}

	a.Gateways, err = a.buildGateways()
	if err != nil {
		a.Close()
		return nil, err
	}

	a.Billing = billing.New(billing.Config{Pool: a.Pool, Clock: a.Clock, Gateways: a.Gateways, Log: log, Hooks: o.Hooks, Policies: policies,
		Registry: a.Registry, InvoicePrefix: cfg.InvoicePrefix, InboxPool: inboxPool, WebhookLookupWindow: cfg.WebhookLookupWindow})
	// Webhook delivery keeps the wall clock even under the test clock: its retries are HTTP, not domain time.
	a.Notify = notify.New(notify.Config{Pool: a.Pool, Registry: a.Registry, Log: log.With("component", "notify"), Tuning: o.Notify,
		AllowPrivateNetworks: cfg.Mode != config.ModeProduction})
	a.Reconcile = reconcile.New(reconcile.Config{Pool: a.Pool, Payments: a.Billing, Clock: a.Clock, Gateways: a.Gateways, Registry: a.Registry, Refunds: a.Billing,
		Log: log.With("component", "reconcile")})
	// The workers' billing is the same service on the workers' pool.
	workerBilling := a.Billing.WithPool(a.WorkerPool)
	if cfg.MailFrom != "" {
		if a.Mail, err = buildMail(cfg, a.WorkerPool, workerBilling, a.Registry, log, o); err != nil {
			a.Close()
			return nil, err
		}
		// Every event, on either pool, is offered to mail in its own transaction.
		a.Billing.SetEventSink(a.Mail)
		log.Info("customer emails on", "from", cfg.MailFrom, "smtp", cfg.SMTP.String())
	}
	// The vault before the jobs: its revocations enqueue the gateway deletion the jobs carry out.
	if a.Vault, err = a.buildVault(); err != nil {
		a.Close()
		return nil, err
	}
	a.Jobs, err = jobs.New(jobs.Config{Pool: a.WorkerPool, Billing: workerBilling, Notify: a.Notify, Mail: a.Mail, Clock: a.Clock, TestClock: cfg.TestClock,
		Log: log, Workers: cfg.Workers, FetchCooldown: cfg.FetchCooldown, JobTimeout: cfg.JobTimeout, JobRescueAfter: cfg.JobRescueAfter,
		ReconcileTimeout: cfg.ReconcileTimeout, NoReindex: !reindex, WebhookRetention: cfg.WebhookRetention,
		Gateways: cfg.Gateways, Reconcile: a.Reconcile, Registry: a.Registry, Vault: a.Vault,
		RenewBatchSize: o.RenewBatchSize})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Billing.SetScheduler(a.Jobs.Scheduler())
	var advancer api.ClockAdvancer
	if a.TestClock != nil {
		advancer = &jobs.Advancer{Clock: a.TestClock, Billing: a.Billing, Sweeper: a.Jobs.Sweeper, Pool: a.Pool, Log: log, JobTimeout: cfg.JobTimeout}
	}
	a.Billing.SetVault(a.Vault)
	workerBilling.SetVault(a.Vault)
	a.Notify.SetKeyRing(a.Vault.KeyRing())
	if a.Links, err = a.buildLinks(); err != nil {
		a.Close()
		return nil, err
	}
	a.Receipts = portal.NewReceipts(a.Billing, cfg.MerchantName)
	// Emails link to the customer page and attach receipts (tests may stand in their own).
	if a.Mail != nil {
		if o.MailLinks == nil && a.Links != nil {
			a.Mail.SetLinks(a.Links)
		}
		if o.MailReceipts == nil && a.Receipts != nil {
			a.Mail.SetReceipts(a.Receipts)
		}
	}

	var boot []api.BootstrapToken
	for _, k := range cfg.BootstrapKeys {
		boot = append(boot, api.BootstrapToken{Role: k.Role, Token: k.Token.Reveal()})
	}
	a.API = api.New(api.Deps{
		Pool:           a.Pool,
		Log:            log,
		Clock:          a.Clock,
		Registry:       a.Registry,
		Bootstrap:      boot,
		Ready:          a.Ready,
		TestClock:      a.TestClock,
		ClockAdvancer:  advancer,
		Billing:        a.Billing,
		RateLimit:      cfg.APIRateLimit,
		WebhookRate:    cfg.WebhookRate,
		TrustedProxies: cfg.TrustedProxies,
		Vault:          a.Vault,
		Notify:         a.Notify,
		Gateways:       a.Gateways,
		Reconcile:      a.Reconcile,
		HealthOnly:     cfg.Role == config.RoleWorker,
		Console:        a.console,
		Portal:         a.portalPage(),
	})
	return a, nil
}

// poolSizes are the connections of the API's pool and the workers' pool. The workers' 40 is what one pool
// had for both (cmd/bench: more connections add runnable processes on a CPU-bound day, not throughput);
// the API's pool is its own, so a request never waits behind a worker. A process of one role keeps only a
// few connections for the other (the health check, the test clock).
func poolSizes(role config.Role) (api, workers int32) {
	switch role {
	case config.RoleAPI:
		return 20, 4
	case config.RoleWorker:
		return 4, 40
	}
	return 16, 40
}

// Ready reports whether this process can take traffic: the database answers and is migrated.
func (a *App) Ready(ctx context.Context) error {
	if a.stopping.Load() {
		return ErrShuttingDown
	}
	if err := a.Pool.Ping(ctx); err != nil {
		a.Log.Warn("not ready: database unavailable", "err", err)
		return ErrDatabaseUnavailable
	}
	err := migrations.Check(ctx, a.Pool)
	switch {
	case err == nil:
		return nil
	case a.stopping.Load():
		return ErrShuttingDown
	case errors.Is(err, migrations.ErrNotMigrated):
		a.Log.Warn("not ready", "err", err)
		return migrations.ErrNotMigrated
	default:
		a.Log.Warn("not ready: database unavailable", "err", err)
		return ErrDatabaseUnavailable
	}
}

// Run serves HTTP (and works jobs, by role) until ctx is canceled, then drains within the shutdown
// timeout: stop taking jobs, let running ones finish, close the HTTP server gracefully.
func (a *App) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.Config.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.Config.HTTPAddr, err)
	}
	return a.Serve(ctx, ln)
}

// Serve is Run on a given listener.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.API,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Advancing the test clock through months of billing can take a while.
		WriteTimeout: 10 * time.Minute,
		IdleTimeout:  120 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if a.Sim != nil && a.simWebhooks && a.Config.Role != config.RoleWorker {
		a.Sim.SetWebhookURL(selfURL(ln) + "/webhooks/sim")
	}
	// Where webhooks are received, their processing jobs are enqueued by this process's dispatcher.
	dispatchCtx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	dispatched := make(chan struct{})
	if a.Config.Role != config.RoleWorker {
		go func() { defer close(dispatched); a.Jobs.DispatchInbox(dispatchCtx) }()
	} else {
		close(dispatched)
	}
	defer func() { stopDispatch(); <-dispatched }()
	works := a.Config.Role != config.RoleAPI
	if works {
		if err := a.Jobs.Start(context.WithoutCancel(ctx)); err != nil { // a canceled start context would hard-stop River; Stop drains instead
			_ = srv.Close()
			return fmt.Errorf("start job workers: %w", err)
		}
	}
	a.Log.Info("billingd serving", "addr", ln.Addr().String(), "role", a.Config.Role, "gateways", a.Config.Gateways)

	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	a.stopping.Store(true)
	a.Log.Info("shutting down", "timeout", a.Config.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
	defer cancel()
	if works {
		if err := a.Jobs.Stop(shutdownCtx); err != nil {
			a.Log.Warn("job workers stop", "err", err)
		}
	}
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.Log.Warn("http shutdown", "err", err)
	}
	return nil
}

// Close releases the App's resources.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// selfURL is how this process reaches its own listener (a wildcard address is dialed on loopback).
func selfURL(ln net.Listener) string {
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return "http://" + ln.Addr().String()
	}
	host := addr.IP
	if host == nil || host.IsUnspecified() {
		host = net.IPv4(127, 0, 0, 1)
	}
	return "http://" + net.JoinHostPort(host.String(), strconv.Itoa(addr.Port))
}

// buildMail makes the customer-email service from the configuration: templates (the merchant's
// overrides checked now, so a broken one refuses the start) and the kinds that are on.
func buildMail(cfg config.Config, pool *pgxpool.Pool, b *billing.Service, reg prometheus.Registerer, log *slog.Logger, o Options) (*mail.Service, error) {
	kinds, err := mail.ParseKinds(cfg.MailKinds)
	if err != nil {
		return nil, fmt.Errorf("BILLING_MAIL_KINDS: %w", err)
	}
	tpl, err := mail.LoadTemplates(cfg.MailTemplates)
	if err != nil {
		return nil, fmt.Errorf("BILLING_MAIL_TEMPLATES: %w", err)
	}
	return mail.New(mail.Config{Pool: pool, Billing: b, From: cfg.MailFrom, SMTP: cfg.SMTP, Templates: tpl, Kinds: kinds,
		Links: o.MailLinks, Receipts: o.MailReceipts, Log: log.With("component", "mail"), Registry: reg, Tuning: o.Mail, Hooks: o.MailHooks})
}
