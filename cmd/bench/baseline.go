package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// PgbenchResult is Postgres's own TPC-B-like throughput on this machine during the run. The machine is
// shared, so it is measured twice, before and after the billing days, and the ratios use the mean.
type PgbenchResult struct {
	Binary  string       `json:"binary"`
	Scale   int          `json:"scale"`
	Clients int          `json:"clients"`
	Threads int          `json:"threads"`
	Seconds int          `json:"seconds"`
	Runs    []PgbenchRun `json:"runs"`
	TPS     float64      `json:"tps_mean"`
	Latency float64      `json:"latency_avg_ms_mean"`
	// PostgresMsPerTx is the Postgres backends' CPU per TPC-B transaction: set against a renewal's, it is
	// the ratio least disturbed by whatever else the shared machine is doing.
	PostgresMsPerTx float64 `json:"postgres_cpu_ms_per_tx"`
}

// PgbenchRun is one pgbench run.
type PgbenchRun struct {
	When            string   `json:"when"`
	TPS             float64  `json:"tps"`
	Latency         float64  `json:"latency_avg_ms"`
	PostgresMsPerTx float64  `json:"postgres_cpu_ms_per_tx"`
	CPU             CPUSplit `json:"cpu"`
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
var latLine = regexp.MustCompile(`latency average = ([0-9.]+) ms`)

type pgbench struct {
	srv *server
	res PgbenchResult
	db  string
}

// newPgbench finds (or installs) pgbench and initializes its scratch database at scale 10.
func newPgbench(ctx context.Context, srv *server, m mode, logf func(string, ...any)) (*pgbench, error) {
	p := &pgbench{srv: srv, db: "bench_pgbench", res: PgbenchResult{Scale: 10, Clients: 16, Threads: 2, Seconds: m.pgbenchSeconds}}
	bin, err := ensurePgbench(ctx, logf)
	if err != nil {
		return nil, err
	}
	p.res.Binary = bin
	if err := srv.recreate(ctx, p.db); err != nil {
		return nil, err
	}
	logf("pgbench: initializing scale %d", p.res.Scale)
	if out, err := exec.CommandContext(ctx, bin, "-i", "-q", "-s", strconv.Itoa(p.res.Scale), srv.url(p.db)).CombinedOutput(); err != nil {
		srv.drop(context.WithoutCancel(ctx), p.db)
		return nil, fmt.Errorf("pgbench -i: %w\n%s", err, tail(string(out), 2000))
	}
	return p, nil
}

func (p *pgbench) close(ctx context.Context) { p.srv.drop(context.WithoutCancel(ctx), p.db) }

// run measures TPC-B-like TPS (pgbench's default script: three updates, a select and an insert in one
// transaction, on random rows) with 16 clients, and the Postgres CPU it took.
func (p *pgbench) run(ctx context.Context, when string, logf func(string, ...any)) error {
	r := &p.res
	logf("pgbench (%s): %d clients, %d threads, %d s", when, r.Clients, r.Threads, r.Seconds)
	cmd := exec.CommandContext(ctx, r.Binary, "-c", strconv.Itoa(r.Clients), "-j", strconv.Itoa(r.Threads),
		"-T", strconv.Itoa(r.Seconds), p.srv.url(p.db))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Meter the Postgres backends from the second second on, once pgbench's clients are connected.
	mon, err := p.srv.pool(ctx, p.db, 1)
	if err != nil {
		return err
	}
	defer mon.Close()
	var meter *cpuMeter
	var metered time.Time
	var err2 error
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case err2 = <-done:
			break wait
		case <-tick.C:
			pids, _ := backendPIDs(ctx, mon)
			if meter == nil {
				meter, metered = newCPUMeter(cmd.Process.Pid, pids), time.Now()
			} else {
				meter.observe(pids)
			}
		}
	}
	if err2 != nil {
		return fmt.Errorf("pgbench: %w\n%s", err2, tail(out.String(), 2000))
	}
	mm := tpsLine.FindSubmatch(out.Bytes())
	if mm == nil {
		return fmt.Errorf("pgbench printed no tps line:\n%s", tail(out.String(), 2000))
	}
	run := PgbenchRun{When: when}
	run.TPS, _ = strconv.ParseFloat(string(mm[1]), 64)
	if l := latLine.FindSubmatch(out.Bytes()); l != nil {
		run.Latency, _ = strconv.ParseFloat(string(l[1]), 64)
	}
	if meter != nil {
		// The last observation was at most a second before the end; the split covers until then.
		run.CPU = meter.split(meter.lastObserved.Sub(metered).Seconds(), runtime.NumCPU())
		if run.TPS > 0 && run.CPU.WallSeconds > 0 {
			run.PostgresMsPerTx = 1000 * run.CPU.Postgres / run.TPS
		}
	}
	r.Runs = append(r.Runs, run)
	r.TPS, r.Latency, r.PostgresMsPerTx = 0, 0, 0
	for _, x := range r.Runs {
		r.TPS += x.TPS / float64(len(r.Runs))
		r.Latency += x.Latency / float64(len(r.Runs))
		r.PostgresMsPerTx += x.PostgresMsPerTx / float64(len(r.Runs))
	}
	logf("pgbench (%s): %.0f TPS, %.2f ms of Postgres CPU per transaction", when, run.TPS, run.PostgresMsPerTx)
	return nil
}

// RiverResult is River's throughput on jobs that do nothing, with billingd's client settings: the
// ceiling the job machinery alone puts on renewals.
type RiverResult struct {
	Jobs          int     `json:"jobs"`
	Workers       int     `json:"workers"`
	FetchCooldown string  `json:"fetch_cooldown"`
	PoolConns     int32   `json:"pool_conns"`
	Seconds       float64 `json:"seconds"`
	JobsPerSecond float64 `json:"jobs_per_second"`
	CommitsPerJob float64 `json:"commits_per_job"`
}

type noopArgs struct {
	N int `json:"n"`
}

func (noopArgs) Kind() string { return "bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (w *noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

func runRiverBaseline(ctx context.Context, srv *server, m mode, svc serviceSettings, logf func(string, ...any)) (RiverResult, error) {
	r := RiverResult{Jobs: m.riverJobs, Workers: svc.Workers, FetchCooldown: svc.FetchCooldown.String(), PoolConns: svc.PoolConns}
	const db = "bench_river"
	if err := srv.recreate(ctx, db); err != nil {
		return r, err
	}
	defer srv.drop(context.WithoutCancel(ctx), db)
	setup, err := srv.pool(ctx, db, 4)
	if err != nil {
		return r, err
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(setup), nil)
	if err != nil {
		setup.Close()
		return r, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		setup.Close()
		return r, err
	}
	// Insert first, then start: the figure is how fast River drains a backlog, as on billing day.
	logf("river: inserting %d no-op jobs", r.Jobs)
	inserter, err := river.NewClient(riverpgxv5.New(setup), &river.Config{Logger: quietLogger()})
	if err != nil {
		setup.Close()
		return r, err
	}
	const batch = 1000
	for i := 0; i < r.Jobs; i += batch {
		params := make([]river.InsertManyParams, 0, batch)
		for j := i; j < min(i+batch, r.Jobs); j++ {
			params = append(params, river.InsertManyParams{Args: noopArgs{N: j}})
		}
		if _, err := inserter.InsertMany(ctx, params); err != nil {
			setup.Close()
			return r, fmt.Errorf("insert no-op jobs: %w", err)
		}
	}
	// Backends report their statistics when they exit: closing the setup pool keeps the inserts out of
	// the commit count.
	setup.Close()
	mon, err := srv.pool(ctx, db, 1)
	if err != nil {
		return r, err
	}
	defer mon.Close()
	before, err := readDBStats(ctx, mon)
	if err != nil {
		return r, err
	}

	// The worker pool is billingd's: the same size, River's client with the same settings.
	cfg, err := pgxpool.ParseConfig(srv.url(db))
	if err != nil {
		return r, err
	}
	cfg.MaxConns = svc.PoolConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return r, err
	}
	defer pool.Close()
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: svc.Workers}},
		Workers:           workers,
		FetchCooldown:     svc.FetchCooldown,
		FetchPollInterval: 200 * time.Millisecond,
		JobTimeout:        time.Minute,
		Logger:            quietLogger(),
	})
	if err != nil {
		return r, err
	}
	start := time.Now()
	if err := client.Start(ctx); err != nil {
		return r, err
	}
	// Done is when River has recorded every completion (its completer batches them), not when the
	// workers returned.
	deadline := time.Now().Add(m.riverTimeout)
	for {
		var n int
		if err := mon.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'completed'`).Scan(&n); err != nil {
			return r, err
		}
		if n >= r.Jobs {
			break
		}
		if time.Now().After(deadline) {
			_ = client.Stop(context.WithoutCancel(ctx))
			return r, fmt.Errorf("river completed only %d of %d no-op jobs in %s", n, r.Jobs, m.riverTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.Seconds = time.Since(start).Seconds()
	r.JobsPerSecond = float64(r.Jobs) / r.Seconds
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = client.Stop(stopCtx)
	pool.Close()
	time.Sleep(500 * time.Millisecond) // exiting backends' reports land
	after, err := readDBStats(ctx, mon)
	if err == nil {
		r.CommitsPerJob = float64(after.Commits-before.Commits) / float64(r.Jobs)
	}
	return r, nil
}
