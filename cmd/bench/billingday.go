package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DayResult is one billing day: N subscriptions all due when billingd starts.
type DayResult struct {
	Name          string `json:"name"`
	Subscriptions int    `json:"subscriptions"`
	// Book is how many subscriptions the database held when more than the day's (the daybook scenario):
	// the others renew over the coming month, so the day's statements run against a book that size.
	Book         int     `json:"book,omitempty"`
	LatencyMs    int     `json:"gateway_latency_ms"`
	Drained      bool    `json:"drained"`
	Paid         int     `json:"paid"`
	StartupMs    float64 `json:"billingd_startup_ms"`
	DrainSeconds float64 `json:"drain_seconds"`
	// RenewalsPerS is N over the time to drain; SteadyPerS the rate between 10% and 90% paid (no ramp-up
	// or tail).
	RenewalsPerS float64 `json:"renewals_per_second"`
	SteadyPerS   float64 `json:"steady_renewals_per_second"`
	P50DueToPaid float64 `json:"p50_due_to_paid_seconds"`
	P99DueToPaid float64 `json:"p99_due_to_paid_seconds"`
	MaxDueToPaid float64 `json:"max_due_to_paid_seconds"`
	// Commits and CommitsPerRenew are pg_stat_database's xact_commit over the run (billingd's and River's
	// transactions; the monitor's own few reads included).
	Commits         int64   `json:"commits"`
	Rollbacks       int64   `json:"rollbacks"`
	CommitsPerRenew float64 `json:"commits_per_renewal"`
	RSSMiB          float64 `json:"billingd_peak_rss_mib"`
	// CPU milliseconds per renewal, Postgres backends and billingd: the cost that, on a CPU-bound
	// machine, sets the rate.
	PostgresMsPerRenewal float64        `json:"postgres_cpu_ms_per_renewal"`
	BillingdMsPerRenewal float64        `json:"billingd_cpu_ms_per_renewal"`
	CPU                  CPUSplit       `json:"cpu"`
	Waits                map[string]int `json:"backend_wait_samples"`
	Samples              int            `json:"wait_sample_count"`
	// Tables is what the run did to each table, per renewal (pg_stat_user_tables deltas).
	Tables        map[string]TableActivity `json:"tables_per_renewal"`
	InvoiceStatus map[string]int           `json:"invoice_status"`
	// OtherJobWait is, per job kind other than renew, the longest a job waited between becoming runnable
	// and being started: periodic housekeeping (the sweeper, webhook fan-out) shares the default queue
	// with the billing day's backlog.
	OtherJobWait map[string]float64 `json:"other_jobs_max_wait_seconds"`
	// GetDuring is the API's GET load run while this day drained (the dayapi scenario), from billingd's
	// start, measured from outside as in the api scenario.
	GetDuring *LoadResult `json:"get_during_day,omitempty"`
	// Replicas is how many billingd processes shared the day (-replicas: the first BILLING_ROLE=all, the
	// others BILLING_ROLE=worker); CPU "billingd" is the first's. BatchRuns is how many renew_batch job
	// runs each River client (one per process) made, most first: the share of the day each replica took.
	Replicas  int   `json:"replicas"`
	BatchRuns []int `json:"renew_batch_runs_per_replica,omitempty"`
	// GatewayCharges are the simulator's successful charges during the day, and DoubleCharges the
	// invoices among them charged more than once (must be 0).
	GatewayCharges int            `json:"gateway_charges"`
	DoubleCharges  int            `json:"double_charges"`
	AttemptStatus  map[string]int `json:"attempt_status"`
	Settings       serviceSettings
}

// runBillingDay seeds N subscriptions due a second ago, starts billingd, and watches until every renewal
// invoice is paid (or the timeout). Due-to-paid is measured from billingd's start: everything was already
// due then, so the figure is the service's own delay, with nothing of the seeding in it.
// book, when more than n, is how many subscriptions to seed in all (n of them due).
func runBillingDay(ctx context.Context, e *env, name string, n, book, latencyMs int, withGets bool) (DayResult, error) {
	r := DayResult{Name: name, Subscriptions: n, LatencyMs: latencyMs, Settings: e.svc}
	if book > n {
		r.Book = book
		if e.jobsSeeded {
			return r, fmt.Errorf("-legacy-renew-jobs seeds a job per subscription, so every one must be due: not with a book of %d", book)
		}
	}
	db := "bench_" + name
	pool, err := e.srv.migrated(ctx, db)
	if err != nil {
		return r, err
	}
	defer func() { pool.Close(); e.srv.drop(context.WithoutCancel(ctx), db) }()
	// Postgres keeps microseconds: the jobs' due time must equal the column's for their uniqueness to
	// match what the sweeper would insert.
	due := time.Now().Add(-time.Second).Truncate(time.Microsecond)
	if err := seed(ctx, pool, seedSpec{N: max(n, book), Due: n, DueAt: due, Token: e.token,
		CustomerKey: e.customerKey, Ring: e.ring}, e.logf); err != nil {
		return r, err
	}
	if e.jobsSeeded {
		if err := seedRenewJobs(ctx, pool, n, due, e.logf); err != nil {
			return r, err
		}
	}
	if err := checkSeededKey(ctx, pool, e.ring, e.token); err != nil {
		return r, err
	}
	e.sim.setLatency(latencyMs)
	defer e.sim.setLatency(0)

	// A backend reports its statistics when it exits (an idle one only every few seconds): reconnect,
	// so the seeding is all in the first reading and none of it in the run's.
	reopen := func() error {
		pool.Close()
		pool, err = e.srv.pool(ctx, db, 8)
		return err
	}
	if err := reopen(); err != nil {
		return r, err
	}
	before, err := readDBStats(ctx, pool)
	if err != nil {
		return r, err
	}
	tablesBefore, err := readTables(ctx, pool)
	if err != nil {
		return r, err
	}
	pre, _ := backendPIDs(ctx, pool)
	e.logf("%s: starting billingd (%d due, gateway latency %d ms)", name, n, latencyMs)
	var bd *billingd
	if e.cpuProfile != "" {
		bd, err = startInProc(ctx, e.srv.url(db), e.sim.URL, e.encKeys, e.cpuProfile+"."+name)
	} else {
		bd, err = startBillingd(ctx, e.billingdBin, e.srv.url(db), e.sim.URL, e.encKeys, e.outDir, name)
	}
	if err != nil {
		return r, err
	}
	defer bd.Stop()
	chargesBefore := len(e.sim.Charges())
	r.Replicas = 1
	for i := 2; i <= e.replicas; i++ {
		more, err := startBillingdAs(ctx, e.billingdBin, e.srv.url(db), e.sim.URL, e.encKeys, e.outDir, fmt.Sprintf("%s-replica%d", name, i), "worker")
		if err != nil {
			return r, err
		}
		defer more.Stop()
		r.Replicas++
	}
	start := bd.Started
	r.StartupMs = float64(bd.Ready.Sub(bd.Started).Microseconds()) / 1000
	var gets chan LoadResult
	if withGets {
		gets = make(chan LoadResult, 1)
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: 2048, MaxIdleConnsPerHost: 2048, IdleConnTimeout: time.Minute}}
		auth := "Bearer " + bd.Token
		e.logf("%s: GET /v1/subscriptions/{id} at %.0f/s for %s while the day drains", name, e.mode.getRate, e.mode.apiDuration)
		go func() {
			res := openLoop(ctx, client, e.mode.getRate, e.mode.apiDuration, func(int) (*http.Request, error) {
				req, err := http.NewRequest(http.MethodGet, bd.URL+"/v1/subscriptions/"+subID(1+rand.IntN(n)), nil)
				if err == nil {
					req.Header.Set("Authorization", auth)
				}
				return req, err
			})
			res.Endpoint = "GET /v1/subscriptions/{id}"
			gets <- res
		}()
	}
	meter := newCPUMeter(bd.PID(), pre)
	waits := waitSample{}
	deadline := start.Add(e.mode.dayTimeout)
	interval := 500 * time.Millisecond
	if n > 100_000 {
		interval = 2 * time.Second // counting a million invoices is not free
	}
	var hwm int64
	lastLog := time.Now()
	for {
		if err := sampleWaits(ctx, pool, waits); err == nil {
			r.Samples++
		}
		pids, _ := backendPIDs(ctx, pool)
		meter.observe(pids)
		if _, h := procMemKiB(bd.PID()); h > hwm {
			hwm = h
		}
		var paid int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM invoices WHERE kind = 'renewal' AND status = 'paid'`).Scan(&paid); err != nil {
			return r, err
		}
		r.Paid = paid
		if paid >= n {
			r.Drained = true
			break
		}
		if !bd.Alive() {
			return r, fmt.Errorf("billingd died during the billing day:\n%s", bd.logTail())
		}
		if time.Now().After(deadline) {
			e.logf("%s: timeout after %s with %d of %d paid", name, e.mode.dayTimeout, paid, n)
			break
		}
		if time.Since(lastLog) > 10*time.Second {
			e.logf("%s: %d of %d paid after %s", name, paid, n, time.Since(start).Round(time.Second))
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(interval):
		}
	}
	wall := time.Since(start).Seconds()
	perInvoice := map[string]int{}
	for _, c := range e.sim.Charges()[chargesBefore:] {
		if c.Status != "DONE" {
			continue
		}
		r.GatewayCharges++
		perInvoice[c.OrderID[:strings.LastIndex(c.OrderID, "-")]]++
	}
	for _, k := range perInvoice {
		if k > 1 {
			r.DoubleCharges++
		}
	}
	r.CPU = meter.split(wall, runtime.NumCPU())
	if gets != nil {
		g := <-gets
		r.GetDuring = &g
	}
	if _, h := procMemKiB(bd.PID()); h > hwm {
		hwm = h
	}
	r.RSSMiB = float64(hwm) / 1024
	if r.Paid > 0 {
		r.PostgresMsPerRenewal = 1000 * r.CPU.PostgresCPU / float64(r.Paid)
		r.BillingdMsPerRenewal = 1000 * r.CPU.BillingdCPU / float64(r.Paid)
	}
	// Stop billingd before reading the commit counters: its backends report their statistics as they
	// exit, so the count is complete.
	bd.Stop()
	if err := reopen(); err != nil {
		return r, err
	}
	time.Sleep(500 * time.Millisecond) // exiting backends' reports land
	after, err := readDBStats(ctx, pool)
	if err != nil {
		return r, err
	}
	r.Commits, r.Rollbacks = after.Commits-before.Commits, after.Rollbacks-before.Rollbacks
	if tablesAfter, err := readTables(ctx, pool); err == nil && r.Paid > 0 {
		r.Tables = tableDelta(tablesBefore, tablesAfter, float64(r.Paid))
	}
	if r.Paid > 0 {
		r.CommitsPerRenew = float64(r.Commits) / float64(r.Paid)
	}
	r.Waits = waits

	// Latencies from the invoices themselves: paid_at is billingd's wall clock (no test clock here).
	var first, p10, p90, last *time.Time
	var p50, p99, maxS *float64
	if err := pool.QueryRow(ctx, `SELECT min(paid_at), percentile_disc(0.1) WITHIN GROUP (ORDER BY paid_at),
			percentile_disc(0.9) WITHIN GROUP (ORDER BY paid_at), max(paid_at),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM paid_at - $1::timestamptz)),
			percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM paid_at - $1::timestamptz)),
			max(extract(epoch FROM paid_at - $1::timestamptz))::float8
		FROM invoices WHERE kind = 'renewal' AND status = 'paid'`, start).Scan(&first, &p10, &p90, &last, &p50, &p99, &maxS); err != nil {
		return r, fmt.Errorf("latencies: %w", err)
	}
	if last != nil {
		r.DrainSeconds = last.Sub(start).Seconds()
		if !r.Drained {
			r.DrainSeconds = wall
		}
		r.RenewalsPerS = float64(r.Paid) / r.DrainSeconds
		if d := p90.Sub(*p10).Seconds(); d > 0 {
			r.SteadyPerS = 0.8 * float64(r.Paid) / d
		}
		r.P50DueToPaid, r.P99DueToPaid, r.MaxDueToPaid = *p50, *p99, *maxS
	}
	r.InvoiceStatus, _ = countBy(ctx, pool, `SELECT status, count(*) FROM invoices WHERE kind = 'renewal' GROUP BY 1`)
	r.AttemptStatus, _ = countBy(ctx, pool, `SELECT status, count(*) FROM payment_attempts GROUP BY 1`)
	if rows, err := pool.Query(ctx, `SELECT count(*) FROM river_job, unnest(attempted_by) AS c
			WHERE kind = 'renew_batch' GROUP BY c ORDER BY 1 DESC`); err == nil {
		for rows.Next() {
			var k int
			if rows.Scan(&k) == nil {
				r.BatchRuns = append(r.BatchRuns, k)
			}
		}
		rows.Close()
	}
	r.OtherJobWait = map[string]float64{}
	if rows, err := pool.Query(ctx, `SELECT kind, max(extract(epoch FROM coalesce(attempted_at, now()) - greatest(scheduled_at, $1::timestamptz)))::float8
			FROM river_job WHERE kind <> 'renew' AND scheduled_at <= $2 GROUP BY 1`, start, start.Add(time.Duration(r.DrainSeconds*float64(time.Second)))); err == nil {
		for rows.Next() {
			var k string
			var v float64
			if rows.Scan(&k, &v) == nil {
				r.OtherJobWait[k] = v
			}
		}
		rows.Close()
	}
	e.logf("%s: %d paid in %.1fs: %.0f renewals/s, p50 %.2fs p99 %.2fs, %.1f commits/renewal, RSS %.0f MiB",
		name, r.Paid, r.DrainSeconds, r.RenewalsPerS, r.P50DueToPaid, r.P99DueToPaid, r.CommitsPerRenew, r.RSSMiB)
	return r, nil
}

// TableActivity is one table's row operations and scans.
type TableActivity struct {
	Inserted float64 `json:"ins"`
	Updated  float64 `json:"upd"`
	HOT      float64 `json:"hot_upd"`
	Deleted  float64 `json:"del"`
	IdxScans float64 `json:"idx_scan"`
	SeqScans float64 `json:"seq_scan"`
}

func readTables(ctx context.Context, pool *pgxpool.Pool) (map[string]TableActivity, error) {
	rows, err := pool.Query(ctx, `SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, coalesce(idx_scan, 0), seq_scan
		FROM pg_stat_user_tables`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]TableActivity{}
	for rows.Next() {
		var name string
		var a [6]int64
		if err := rows.Scan(&name, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5]); err != nil {
			return nil, err
		}
		out[name] = TableActivity{float64(a[0]), float64(a[1]), float64(a[2]), float64(a[3]), float64(a[4]), float64(a[5])}
	}
	return out, rows.Err()
}

func tableDelta(before, after map[string]TableActivity, per float64) map[string]TableActivity {
	out := map[string]TableActivity{}
	r := func(x float64) float64 { return float64(int(x/per*100+0.5)) / 100 }
	for name, a := range after {
		b := before[name]
		d := TableActivity{r(a.Inserted - b.Inserted), r(a.Updated - b.Updated), r(a.HOT - b.HOT), r(a.Deleted - b.Deleted),
			r(a.IdxScans - b.IdxScans), r(a.SeqScans - b.SeqScans)}
		if d != (TableActivity{}) {
			out[name] = d
		}
	}
	return out
}

func backendPIDs(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	rows, err := pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name <> '`+benchApp+`'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			return nil, err
		}
		out = append(out, pid)
	}
	return out, rows.Err()
}

func countBy(ctx context.Context, pool *pgxpool.Pool, sql string) (map[string]int, error) {
	rows, err := pool.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// topWaits is the wait events in descending order of samples, as "event share%".
func topWaits(w map[string]int, k int) []string {
	type kv struct {
		k string
		n int
	}
	var all []kv
	total := 0
	for key, n := range w {
		all = append(all, kv{key, n})
		total += n
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n })
	var out []string
	for i := 0; i < len(all) && i < k; i++ {
		out = append(out, fmt.Sprintf("%s %.0f%%", all[i].k, 100*float64(all[i].n)/float64(total)))
	}
	return out
}
