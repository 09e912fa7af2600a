package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/internal/config"
)

// SweepResult is the leader's periodic sweep with Due of N subscriptions due.
type SweepResult struct {
	Subscriptions int `json:"subscriptions"`
	Due           int `json:"due"`
	// FirstMs is one sweep that finds the due rows and enqueues their jobs (median of 7); RepeatMs a sweep
	// while those jobs wait in the queue (it sees the backlog and stands aside); ReadMs only the six
	// due-work queries (billing.DueWork), without enqueueing.
	FirstMs float64 `json:"first_sweep_ms"`
	// FirstMinMs is the fastest of the first sweeps: what a sweep costs when the shared machine lets it.
	FirstMinMs float64 `json:"first_sweep_min_ms"`
	RepeatMs   float64 `json:"repeat_sweep_ms"`
	ReadMs     float64 `json:"read_only_ms"`
	Enqueued   int     `json:"enqueued"`
	JobsAfter  int     `json:"river_jobs_after"`
	// Rows one sweep read from the subscriptions table (pg_stat_user_tables deltas over the first sweeps).
	SeqScans    int64  `json:"subscriptions_seq_scans"`
	SeqTupRead  int64  `json:"subscriptions_seq_rows_read"`
	IdxScans    int64  `json:"subscriptions_index_scans"`
	IdxTupFetch int64  `json:"subscriptions_index_rows_fetched"`
	Explain     string `json:"explain_due_renewals"`
	// ExplainRows and ExplainBuffers are from the DueRenewals plan's scan node.
	ScanNode      string            `json:"due_renewals_scan"`
	PlanSummary   string            `json:"due_renewals_plan_summary"`
	RangeScan     bool              `json:"due_renewals_index_range_scan"`
	OtherQueries  map[string]string `json:"other_due_queries_scan"`
	AnySeqScan    bool              `json:"any_seq_scan"`
	ExplainTimeMs float64           `json:"due_renewals_execution_ms"`
}

type tableStats struct{ seqScan, seqTup, idxScan, idxTup int64 }

func readTableStats(ctx context.Context, pool *pgxpool.Pool, table string) (tableStats, error) {
	var s tableStats
	err := pool.QueryRow(ctx, `SELECT seq_scan, seq_tup_read, coalesce(idx_scan, 0), coalesce(idx_tup_fetch, 0)
		FROM pg_stat_user_tables WHERE relname = $1`, table).Scan(&s.seqScan, &s.seqTup, &s.idxScan, &s.idxTup)
	return s, err
}

// runSweep measures the sweeper exactly as billingd runs it (app's Jobs.Sweeper, River inserts
// included) in this process, with nothing else on the database.
func runSweep(ctx context.Context, e *env, n, due int) (SweepResult, error) {
	r := SweepResult{Subscriptions: n, Due: due}
	const db = "bench_sweep"
	pool, err := e.srv.migrated(ctx, db)
	if err != nil {
		return r, err
	}
	defer func() { pool.Close(); e.srv.drop(context.WithoutCancel(ctx), db) }()
	if err := seed(ctx, pool, seedSpec{N: n, Due: due, DueAt: time.Now().Add(-time.Second), Token: e.token,
		CustomerKey: e.customerKey, Ring: e.ring}, e.logf); err != nil {
		return r, err
	}
	// Reconnect: a backend reports its statistics when it exits, so none of the seeding's reads can
	// land in the sweeps' figures.
	pool.Close()
	if pool, err = e.srv.pool(ctx, db, 4); err != nil {
		return r, err
	}
	before, err := readTableStats(ctx, pool, "subscriptions")
	if err != nil {
		return r, err
	}
	cfg, err := config.Load(func(k string) string {
		switch k {
		case "DATABASE_URL":
			return e.srv.url(db)
		case "BILLING_SIM_URL":
			return e.sim.URL
		case "BILLING_ENCRYPTION_KEYS":
			return e.encKeys
		case "BILLING_MODE":
			return "dev" // the simulator is the gateway
		case "BILLING_TEST_CLOCK", "BILLING_GATEWAYS", "BILLING_ROLE":
			return ""
		}
		return os.Getenv(k)
	})
	if err != nil {
		return r, err
	}
	a, err := app.New(ctx, cfg, quietLogger())
	if err != nil {
		return r, err
	}
	defer a.Close()

	// Warm the pool and the caches the way a running leader has them: one read-only pass first.
	if _, err := a.Billing.DueWork(ctx, time.Now(), 2000); err != nil {
		return r, err
	}
	t := time.Now()
	work, err := a.Billing.DueWork(ctx, time.Now(), 2000)
	if err != nil {
		return r, err
	}
	r.ReadMs = ms(time.Since(t))
	if len(work) != due {
		return r, fmt.Errorf("sweep: DueWork found %d due, want %d", len(work), due)
	}

	// One sweep is a few tens of milliseconds on a shared machine, so a single timing is mostly noise:
	// sweep several times, removing the jobs in between so each sweep has the same 1k to enqueue, and
	// keep the median. The repeat sweeps (jobs already there) are the steady state.
	const rounds = 7
	var first, repeat []time.Duration
	for i := 0; i < rounds; i++ {
		if i > 0 {
			if _, err := pool.Exec(ctx, `DELETE FROM river_job WHERE kind = 'renew'`); err != nil {
				return r, err
			}
		}
		t = time.Now()
		r.Enqueued, err = a.Jobs.Sweeper.Sweep(ctx)
		first = append(first, time.Since(t))
		if err != nil {
			return r, err
		}
	}
	// The next sweeps find the same 1k due with their jobs waiting (no workers run here): the sweeper
	// sees the backlog and stands aside, reading nothing from subscriptions.
	for i := 0; i < rounds; i++ {
		t = time.Now()
		if _, err := a.Jobs.Sweeper.Sweep(ctx); err != nil {
			return r, err
		}
		repeat = append(repeat, time.Since(t))
	}
	// Backends report their counters when they exit: close the app's pool before reading.
	a.Close()
	time.Sleep(500 * time.Millisecond)
	after, err := readTableStats(ctx, pool, "subscriptions")
	if err != nil {
		return r, err
	}
	// Between the readings, the two DueWork passes above and the seven first sweeps read subscriptions
	// (the same rows each time: a sweep's reads are its DueWork); the stand-aside sweeps read nothing.
	const reads = rounds + 2
	r.SeqScans = (after.seqScan - before.seqScan) / reads
	r.SeqTupRead = (after.seqTup - before.seqTup) / reads
	r.IdxScans = (after.idxScan - before.idxScan) / reads
	r.IdxTupFetch = (after.idxTup - before.idxTup) / reads
	r.FirstMs, r.RepeatMs = ms(median(first)), ms(median(repeat))
	r.FirstMinMs = ms(slices.Min(first))
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'renew'`).Scan(&r.JobsAfter)

	queries, err := dueQueries(e.root)
	if err != nil {
		return r, err
	}
	r.OtherQueries = map[string]string{}
	for _, name := range []string{"DueRenewals", "DueCollections", "DueAttemptLookups", "DueGraceEnds", "DueDunningEnds", "DueIncompleteExpiries"} {
		sql, ok := queries[name]
		if !ok {
			return r, fmt.Errorf("query %s not found under internal/store/queries", name)
		}
		plan, err := explain(ctx, pool, sql)
		if err != nil {
			return r, fmt.Errorf("explain %s: %w", name, err)
		}
		node := scanNode(plan)
		if strings.Contains(plan, "Seq Scan") {
			r.AnySeqScan = true
		}
		if name == "DueRenewals" {
			r.Explain = plan
			// A plain or a bitmap index scan: either way only the index range next_renewal_at <= now
			// is read. (With the due rows spread one per heap page, the planner prefers the bitmap.)
			r.RangeScan = (strings.Contains(plan, "Index Scan using subscriptions_due") || strings.Contains(plan, "Bitmap Index Scan on subscriptions_due")) &&
				strings.Contains(plan, "Index Cond: (next_renewal_at <=") && !strings.Contains(plan, "Seq Scan")
			r.ScanNode = indexNode(plan)
			r.PlanSummary = planSummary(plan)
			if m := regexp.MustCompile(`Execution Time: ([0-9.]+) ms`).FindStringSubmatch(plan); m != nil {
				fmt.Sscanf(m[1], "%g", &r.ExplainTimeMs)
			}
			continue
		}
		r.OtherQueries[name] = node
	}
	e.logf("sweep: first %.1f ms (%d enqueued), repeat %.1f ms, read-only %.1f ms; DueRenewals: %s",
		r.FirstMs, r.Enqueued, r.RepeatMs, r.ReadMs, r.ScanNode)
	return r, nil
}

// planSummary is the DueRenewals plan in one line: the scan on subscriptions_due, its rows and buffers.
func planSummary(plan string) string {
	kind := "no index scan on subscriptions_due"
	switch {
	case strings.Contains(plan, "Bitmap Index Scan on subscriptions_due"):
		kind = "bitmap index range scan on subscriptions_due"
	case strings.Contains(plan, "Index Scan using subscriptions_due"):
		kind = "index range scan on subscriptions_due"
	}
	if strings.Contains(plan, "Seq Scan") {
		kind += " + SEQ SCAN"
	}
	rows, bufs, exec := "?", "?", "?"
	if m := regexp.MustCompile(`subscriptions_due.*rows=(\d+) loops`).FindStringSubmatch(plan); m != nil {
		rows = m[1]
	}
	if m := regexp.MustCompile(`^\s*Buffers: (.*)$`).FindStringSubmatch(strings.SplitN(plan, "\n", 3)[1]); m != nil {
		bufs = m[1]
	}
	if m := regexp.MustCompile(`Execution Time: ([0-9.]+) ms`).FindStringSubmatch(plan); m != nil {
		exec = m[1] + " ms"
	}
	return fmt.Sprintf("%s, %s rows, buffers %s, %s", kind, rows, bufs, exec)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// indexNode is the plan's index scan line with its condition and buffers, for the table.
func indexNode(plan string) string {
	lines := strings.Split(plan, "\n")
	for i, l := range lines {
		if !strings.Contains(l, "subscriptions_due") {
			continue
		}
		out := scanNode(l)
		for _, next := range lines[i+1 : min(i+4, len(lines))] {
			next = strings.TrimSpace(next)
			if strings.HasPrefix(next, "Index Cond:") || strings.HasPrefix(next, "Buffers:") {
				out += "; " + next
			}
		}
		return out
	}
	return scanNode(plan)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func explain(ctx context.Context, pool *pgxpool.Pool, sql string) (string, error) {
	rows, err := pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, time.Now(), 2000)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", err
		}
		b.WriteString(line + "\n")
	}
	return b.String(), rows.Err()
}

// scanNode is the plan's first scan line, trimmed ("Index Scan using subscriptions_due on subscriptions
// (actual rows=1000 ...)").
func scanNode(plan string) string {
	for _, l := range strings.Split(plan, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "->"))
		if strings.Contains(l, "Scan") {
			if i := strings.Index(l, "  (cost="); i >= 0 {
				if j := strings.Index(l, "(actual"); j >= 0 {
					return l[:i] + " " + l[j:]
				}
				return l[:i]
			}
			return l
		}
	}
	return ""
}

// dueQueries reads the sweeper's queries from internal/store/queries/billing_*.sql, the sqlc sources, so EXPLAIN runs
// the very text billingd runs: @now becomes $1 and @max $2.
func dueQueries(root string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(root, "internal", "store", "queries", "billing_*.sql"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("internal/store/queries/billing_*.sql not found under %s", root)
	}
	out := map[string]string{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		name := ""
		var body []string
		flush := func() {
			if strings.HasPrefix(name, "Due") {
				q := strings.Join(body, "\n")
				q = strings.TrimSuffix(strings.TrimSpace(q), ";")
				q = strings.ReplaceAll(strings.ReplaceAll(q, "@now", "$1::timestamptz"), "@max", "$2::int")
				out[name] = q
			}
			name, body = "", nil
		}
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "-- name: "); ok {
				flush()
				name, _, _ = strings.Cut(rest, " ")
				continue
			}
			if strings.HasPrefix(strings.TrimSpace(line), "--") {
				continue
			}
			if name != "" {
				body = append(body, line)
			}
		}
		flush()
		fh.Close()
	}
	return out, nil
}
