package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/dunningworks/billing/internal/keyring"
)

// mode is the size of a run. Quick fits in a few minutes on a busy 2-core machine; full is issue 9's
// million-subscription billing day.
type mode struct {
	Name           string `json:"name"`
	DaySubs        int    `json:"billing_day_subscriptions"`
	BookSubs       int    `json:"daybook_book_subscriptions"`
	SweepSubs      int    `json:"sweep_subscriptions"`
	SweepDue       int    `json:"sweep_due"`
	APISubs        int    `json:"api_subscriptions"`
	WebhookSubs    int    `json:"webhook_subscriptions"`
	pgbenchSeconds int
	riverJobs      int
	riverTimeout   time.Duration
	dayTimeout     time.Duration
	getRate        float64
	changeRate     float64
	apiDuration    time.Duration
	// webhookRate and webhookDuration: the open-loop webhook sender during the webhook scenario's billing day.
	webhookRate     float64
	webhookDuration time.Duration
}

var modes = map[string]mode{
	"quick": {Name: "quick", DaySubs: 10_000, BookSubs: 1_000_000, SweepSubs: 100_000, SweepDue: 1_000, APISubs: 10_000,
		pgbenchSeconds: 15, riverJobs: 10_000, riverTimeout: 2 * time.Minute, dayTimeout: 3 * time.Minute,
		getRate: 500, changeRate: 50, apiDuration: 15 * time.Second,
		WebhookSubs: 5_000, webhookRate: 20, webhookDuration: 15 * time.Second},
	"full": {Name: "full", DaySubs: 1_000_000, BookSubs: 1_000_000, SweepSubs: 1_000_000, SweepDue: 1_000, APISubs: 100_000,
		pgbenchSeconds: 60, riverJobs: 100_000, riverTimeout: 10 * time.Minute, dayTimeout: 40 * time.Minute,
		getRate: 500, changeRate: 50, apiDuration: 30 * time.Second,
		WebhookSubs: 20_000, webhookRate: 20, webhookDuration: 30 * time.Second},
}

// env is what every scenario shares.
type env struct {
	mode        mode
	srv         *server
	svc         serviceSettings
	sim         *sim
	ring        *keyring.Ring
	encKeys     string
	token       string
	customerKey string
	billingdBin string
	root        string
	outDir      string
	cpuProfile  string
	jobsSeeded  bool
	replicas    int
	logf        func(string, ...any)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	modeName := flag.String("mode", "quick", "quick (10k billing day) or full (1M billing day)")
	only := flag.String("only", "", "comma-separated scenarios to run (pgbench,river,day0,day250,dayapi,daybook,sweep,api,webhooks); default all but daybook")
	outDir := flag.String("out", "bench/out", "where the JSON results go")
	n := flag.Int("n", 0, "override the billing day's subscription count")
	book := flag.Int("book", 0, "the daybook scenario's book: the billing day's subscriptions due among this many (default 1M)")
	cpuProfile := flag.String("cpuprofile", "", "diagnostic: run billingd in this process for the billing days and write CPU profiles to <file>.<day>")
	replicas := flag.Int("replicas", 1, "billingd processes sharing each billing day (docs/scaling.md)")
	legacyJobs := flag.Bool("legacy-renew-jobs", false, "seed a River renew job per due subscription, as billingd scheduled before batch renewals (each runs the single-renewal path): an A/B against the batches")
	dayTimeout := flag.Duration("day-timeout", 0, "cap each billing day (default: 3m quick, 40m full); an undrained day reports what it paid")
	latency := flag.Int("latency", 250, "the second billing day's added gateway latency, in ms")
	logs := flag.String("logs", "", "keep billingd's logs in this directory (default: a temporary one, removed)")
	dbSuffix := flag.String("db-suffix", "", "append this to the scratch databases' names (bench_day0<suffix>...), so a second run can share the server with one under way")
	flag.Parse()
	m, ok := modes[*modeName]
	if !ok {
		return fmt.Errorf("unknown -mode %q (quick or full)", *modeName)
	}
	if *n > 0 {
		m.DaySubs = *n
	}
	if *book > 0 {
		m.BookSubs = *book
	}
	if *dayTimeout > 0 {
		m.dayTimeout = *dayTimeout
	}
	want := func(s string) bool {
		if *only == "" {
			// daybook seeds a 1M book for one more day: only when asked for.
			return s != "daybook"
		}
		for _, x := range strings.Split(*only, ",") {
			if strings.TrimSpace(x) == s {
				return true
			}
		}
		return false
	}
	dbURL := os.Getenv("DATABASE_URL")
	if dbURL == "" {
		return fmt.Errorf("DATABASE_URL is required (make bench finds or starts a Postgres and sets it)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	began := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	out := *outDir
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	srv, err := newServer(dbURL)
	if err != nil {
		return err
	}
	for _, r := range *dbSuffix {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("-db-suffix: only a-z, 0-9 and _")
		}
	}
	srv.suffix = *dbSuffix
	svc, err := loadServiceSettings(dbURL)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "billing-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	logDir := tmp
	if *logs != "" {
		logDir = *logs
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			return err
		}
	}
	e := &env{mode: m, srv: srv, svc: svc, root: root, outDir: logDir, logf: logf, customerKey: "bench-customer", cpuProfile: *cpuProfile, jobsSeeded: *legacyJobs, replicas: *replicas}
	rep := &Report{Mode: m, Settings: svc, Started: began.UTC(), Host: hostInfo(), Partial: *only != "" || *n > 0 || *cpuProfile != "" || *legacyJobs || *replicas != 1 || *latency != 250 || *dayTimeout > 0}
	if c, err := srv.admin(ctx); err == nil {
		_ = c.QueryRow(ctx, "SHOW server_version").Scan(&rep.Host.Postgres)
		c.Close(ctx)
	}
	logf("mode %s: workers %d, gateway concurrency %d, fetch cooldown %s, pool %d conns; load average %s",
		m.Name, svc.Workers, svc.GatewayLimit, svc.FetchCooldown, svc.PoolConns, rep.Host.LoadAvg)

	var pgb *pgbench
	if want("pgbench") {
		if pgb, err = newPgbench(ctx, srv, m, logf); err != nil {
			return fmt.Errorf("pgbench baseline: %w", err)
		}
		defer pgb.close(ctx)
		if err := pgb.run(ctx, "before", logf); err != nil {
			return fmt.Errorf("pgbench baseline: %w", err)
		}
		rep.Pgbench = &pgb.res
	}
	if want("river") {
		res, err := runRiverBaseline(ctx, srv, m, svc, logf)
		if err != nil {
			return fmt.Errorf("river baseline: %w", err)
		}
		rep.River = &res
		logf("river: %.0f no-op jobs/s (%.2f commits/job)", res.JobsPerSecond, res.CommitsPerJob)
	}

	if want("day0") || want("day250") || want("dayapi") || want("sweep") || want("api") || want("webhooks") {
		logf("building billingd")
		if e.billingdBin, err = buildBillingd(ctx, root, tmp); err != nil {
			return err
		}
		if e.sim, err = startSim(); err != nil {
			return err
		}
		defer e.sim.Close()
		if e.ring, e.encKeys, err = newRing(); err != nil {
			return err
		}
		if e.token, err = e.sim.issueKey(ctx, e.customerKey); err != nil {
			return err
		}
	}
	if want("day0") {
		res, err := runBillingDay(ctx, e, "day0", m.DaySubs, 0, 0, false)
		if err != nil {
			return fmt.Errorf("billing day (0 ms): %w", err)
		}
		rep.Day0 = &res
	}
	if want("day250") {
		res, err := runBillingDay(ctx, e, "day250", m.DaySubs, 0, *latency, false)
		if err != nil {
			return fmt.Errorf("billing day (%d ms): %w", *latency, err)
		}
		rep.Day250 = &res
	}
	if want("daybook") {
		// The same 0 ms day due among a book of BookSubs: what a renewal costs when the tables and
		// their indexes are a big book's (issue 15: within 15% of the day0 figure).
		res, err := runBillingDay(ctx, e, "daybook", m.DaySubs, m.BookSubs, 0, false)
		if err != nil {
			return fmt.Errorf("billing day among %d: %w", m.BookSubs, err)
		}
		rep.DayBook = &res
	}
	if want("dayapi") {
		// The API while a day drains: the same 0 ms day with GETs at the API's rate alongside, a run of
		// its own so the GETs' CPU does not change the day's figures above.
		res, err := runBillingDay(ctx, e, "dayapi", m.DaySubs, 0, 0, true)
		if err != nil {
			return fmt.Errorf("billing day with API load: %w", err)
		}
		rep.DayAPI = &res
	}
	if pgb != nil && (want("day0") || want("day250")) {
		if err := pgb.run(ctx, "after the billing days", logf); err != nil {
			return fmt.Errorf("pgbench baseline: %w", err)
		}
	}
	if want("sweep") {
		res, err := runSweep(ctx, e, m.SweepSubs, m.SweepDue)
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		rep.Sweep = &res
	}
	if want("api") {
		res, err := runAPILoad(ctx, e, m.APISubs)
		if err != nil {
			return fmt.Errorf("api load: %w", err)
		}
		rep.API = &res
	}
	if want("webhooks") {
		res, err := runWebhooks(ctx, e, m.WebhookSubs)
		if err != nil {
			return fmt.Errorf("webhooks: %w", err)
		}
		rep.Webhooks = &res
	}
	rep.Seconds = time.Since(began).Seconds()
	rep.Host.LoadAvgEnd = loadAvg()
	rep.evaluate()
	fmt.Print(rep.Table())
	return rep.write(out)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run the bench from inside the module (make bench)")
	}
	return filepath.Dir(mod), nil
}

// Host describes the machine as it was during the run: the figures are only meaningful against it.
type Host struct {
	CPUs       int    `json:"cpus"`
	GoVersion  string `json:"go"`
	Postgres   string `json:"postgres"`
	LoadAvg    string `json:"load_average_start"`
	LoadAvgEnd string `json:"load_average_end"`
	Commit     string `json:"commit"`
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func hostInfo() Host {
	h := Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadAvg: loadAvg()}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		h.Commit = strings.TrimSpace(string(out))
	}
	return h
}

func (r *Report) write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	suffix := r.Mode.Name
	if r.Partial {
		suffix += "-partial"
	}
	name := filepath.Join(dir, r.Started.Format("20060102T150405Z")+"-"+suffix+".json")
	if err := os.WriteFile(name, b, 0o644); err != nil {
		return err
	}
	if r.Partial {
		// A partial run (-only, -n) is for investigation; latest.json stays a complete run.
		fmt.Fprintf(os.Stderr, "results: %s\n", name)
		return nil
	}
	// latest.json is the quick mode's (the README's table); a full run keeps its own.
	latest := "latest.json"
	if r.Mode.Name != "quick" {
		latest = "latest-" + r.Mode.Name + ".json"
	}
	if err := os.WriteFile(filepath.Join(dir, latest), b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "results: %s and %s\n", name, filepath.Join(dir, latest))
	return nil
}
