// Package chaos runs the whole system under faults, the way a Jepsen run does for a database: several
// billingd replicas and the gateway simulator as real processes on one Postgres, replicas SIGKILLed and
// restarted on a seeded schedule, gateway faults switched on and off, months of billing on the test
// clock; then the faults stop, the system settles, and the invariants are checked against both sides
// (our database and what the "bank" saw). The seed replays a run.
package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dunningworks/billing/internal/keyring"
	"github.com/dunningworks/billing/migrations"
)

// Config is one chaos run.
type Config struct {
	Seed      int64
	Subs      int
	Months    int
	Replicas  int
	KillEvery time.Duration
	// ServerURL is a Postgres URL on the server to use; the run creates (and drops) its own database.
	ServerURL string
	// Tags builds billingd with extra build tags (a deliberately broken build, to prove the suite bites).
	Tags string
	// WorkDir holds binaries and logs (a temp dir when empty).
	WorkDir string
	Out     io.Writer
	// Keep leaves the database for inspection.
	Keep bool
}

const (
	adminToken   = "adm_chaos_token_0123456789"
	serviceToken = "svc_chaos_token_0123456789"
)

// Report is what a run found.
type Report struct {
	Seed       int64
	Duration   time.Duration
	Kills      map[string]int
	Faults     map[string]int
	Subs       int
	Charges    int
	Invoices   map[string]int
	Statuses   map[string]int
	Checks     []Check
	Violations []string
	LogDir     string
}

// Check is one invariant and its result.
type Check struct {
	Name string
	OK   bool
	Note string
}

// Run executes one chaos run.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	start := time.Now()
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Replicas < 2 {
		cfg.Replicas = 2
	}
	rep := &Report{Seed: cfg.Seed, Kills: map[string]int{}, Faults: map[string]int{}, Subs: cfg.Subs}
	work := cfg.WorkDir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", fmt.Sprintf("chaos-%d-", cfg.Seed)); err != nil {
			return nil, err
		}
	}
	rep.LogDir = work
	var outMu sync.Mutex // the killer logs from its own goroutine
	logf := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(cfg.Out, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}

	logf("building billingd and pgsim (tags %q)", cfg.Tags)
	if err := buildBinaries(ctx, work, cfg.Tags); err != nil {
		return nil, err
	}

	dbURL, drop, err := freshDatabase(ctx, cfg.ServerURL, fmt.Sprintf("chaos_%d_%d", cfg.Seed, time.Now().UnixNano()%1e6))
	if err != nil {
		return nil, err
	}
	if !cfg.Keep {
		defer drop()
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	// The replicas run as a service role, as in production: the audit log and the ledger are theirs to
	// add to, not to rewrite, and the schema is not theirs to change.
	if err := migrations.EnsureRole(ctx, pool, serviceRole, serviceRole, "NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"); err != nil {
		return nil, err
	}
	if err := migrations.Migrate(ctx, pool, serviceRole); err != nil {
		return nil, err
	}
	serviceURL, err := asRole(dbURL, serviceRole, serviceRole)
	if err != nil {
		return nil, err
	}

	rnd := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15))
	simAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var replicas []*proc
	for i := 0; i < cfg.Replicas; i++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		role := "all"
		if i == 1 {
			role = "worker"
		}
		replicas = append(replicas, &proc{
			name: fmt.Sprintf("billingd-%d(%s)", i, role), bin: filepath.Join(work, "billingd"), addr: addr,
			log: filepath.Join(work, fmt.Sprintf("billingd-%d.log", i)),
			env: []string{
				"DATABASE_URL=" + withParam(serviceURL, "pool_max_conns", "12"),
				"BILLING_HTTP_ADDR=" + addr, "BILLING_ROLE=" + role, "BILLING_MODE=dev", "BILLING_TEST_CLOCK=1",
				"BILLING_BOOTSTRAP_KEYS=admin:" + adminToken + ",service:" + serviceToken,
				"BILLING_ENCRYPTION_KEYS=1:" + keyring.TestKey,
				"BILLING_SIM_URL=http://" + simAddr, "BILLING_GATEWAY_TIMEOUT=1s", "BILLING_BREAKER_COOLDOWN=100ms",
				"BILLING_SHUTDOWN_TIMEOUT=3s", "BILLING_LOG_LEVEL=info", "BILLING_WORKERS=20",
				// Kills orphan running jobs every second or so: rescue them in seconds, not minutes.
				"BILLING_JOB_TIMEOUT=4s", "BILLING_JOB_RESCUE_AFTER=6s",
				// River leaves a running job alone for its own timeout: a reconciliation orphaned by a
				// kill would hold its unique slot for the default half hour.
				"BILLING_RECONCILE_TIMEOUT=20s",
			},
		})
	}
	sim := &proc{name: "pgsim", bin: filepath.Join(work, "pgsim"), addr: simAddr, log: filepath.Join(work, "pgsim.log"),
		args: []string{"-addr", simAddr, "-seed", fmt.Sprint(cfg.Seed), "-webhook-url", "http://" + replicas[0].addr + "/webhooks/sim"}}
	if err := startSim(ctx, sim); err != nil {
		return nil, err
	}
	defer sim.stop()
	for _, r := range replicas {
		if err := r.start(ctx); err != nil {
			return nil, err
		}
		defer r.stop()
	}
	var api []*proc
	for _, r := range replicas {
		if !strings.Contains(r.name, "worker") {
			api = append(api, r)
		}
	}
	httpc := &http.Client{Timeout: 5 * time.Minute}
	admin := &client{replicas: api, token: adminToken, http: httpc, rnd: rand.New(rand.NewPCG(uint64(cfg.Seed), 1))}
	svc := &client{replicas: api, token: serviceToken, http: httpc, rnd: rand.New(rand.NewPCG(uint64(cfg.Seed), 2))}
	simc := &http.Client{Timeout: 10 * time.Second}

	// The chaos: a killer on its own seeded schedule, and fault phases switched between clock steps.
	chaosCtx, stopChaos := context.WithCancel(ctx)
	var wg sync.WaitGroup
	killRnd := rand.New(rand.NewPCG(uint64(cfg.Seed), 3))
	var killMu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			d := cfg.KillEvery/2 + time.Duration(killRnd.Int64N(int64(cfg.KillEvery)))
			select {
			case <-chaosCtx.Done():
				return
			case <-time.After(d):
			}
			killMu.Lock()
			r := replicas[killRnd.IntN(len(replicas))]
			down := time.Duration(100+killRnd.IntN(700)) * time.Millisecond
			killMu.Unlock()
			r.kill()
			logf("SIGKILL %s (restart in %s)", r.name, down)
			time.Sleep(down)
			if err := r.start(ctx); err != nil {
				logf("restart %s: %v", r.name, err)
			}
		}
	}()

	logf("seeding %d subscriptions", cfg.Subs)
	w, err := seed(ctx, cfg, rnd, admin, svc)
	if err != nil {
		stopChaos()
		wg.Wait()
		return nil, err
	}

	days := cfg.Months * 30
	clockNow, err := testClockNow(ctx, admin)
	if err != nil {
		stopChaos()
		return nil, err
	}
	for half := 1; half <= 2*days; half++ {
		day := (half + 1) / 2
		if half%2 == 1 {
			if day%3 == 1 {
				kind := setFaultPhase(ctx, simc, simAddr, rnd)
				rep.Faults[kind]++
				logf("day %d: fault phase %s", day, kind)
			}
			if day%7 == 0 {
				if err := midlifeChanges(ctx, rnd, svc, w, day); err != nil {
					logf("changes on day %d: %v", day, err)
				}
			}
			if day%10 == 5 {
				n := cardsChange(ctx, rnd, simc, simAddr, svc, w, day)
				logf("day %d: %d customers' cards changed", day, n)
			}
		}
		target := clockNow.Add(time.Duration(half) * 12 * time.Hour)
		if _, err := admin.do(ctx, "POST", "/v1/test-clock/advance", "", map[string]any{"to": target}); err != nil {
			// Liveness is an invariant too: a clock that cannot move means work that never finishes.
			rep.Violations = append(rep.Violations, fmt.Sprintf("liveness: the test clock could not reach day %d: %v", day, err))
			break
		}
	}
	stopChaos()
	wg.Wait()
	for _, r := range replicas {
		rep.Kills[r.name] = r.kills
	}

	logf("faults off; settling")
	clearFaults(ctx, simc, simAddr)
	for _, r := range replicas {
		if err := r.start(ctx); err != nil {
			return nil, err
		}
	}
	end := clockNow.Add(time.Duration(days) * 24 * time.Hour)
	// Lookups back off to a day, technical retries to an hour, and a job that failed transiently retries
	// on River's backoff: move on a day at a time, letting the workers drain, until nothing is left due.
	for i := 1; i <= 6; i++ {
		end = end.Add(24 * time.Hour)
		if _, err := admin.do(ctx, "POST", "/v1/test-clock/advance", "", map[string]any{"to": end}); err != nil {
			rep.Violations = append(rep.Violations, fmt.Sprintf("liveness: the system did not settle: %v", err))
			break
		}
		// Jobs orphaned by the last kills are rescued after BILLING_JOB_RESCUE_AFTER (by the leader's
		// rescuer, which runs every 30 s) and then finish.
		waitQuiet(ctx, pool, 90*time.Second)
		if settled(ctx, pool) {
			break
		}
	}

	logf("checking invariants")
	charges, err := simCharges(ctx, simc, simAddr)
	if err != nil {
		return nil, err
	}
	rep.Charges = len(charges)
	check(ctx, pool, charges, rep)
	rep.Duration = time.Since(start)
	return rep, nil
}

func startSim(ctx context.Context, p *proc) error {
	// pgsim has no /readyz; its control API answers once it listens.
	p.ready = "/__sim/faults"
	return p.start(ctx)
}

func withParam(u, k, v string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + k + "=" + url.QueryEscape(v)
}

// serviceRole is the login role chaos's replicas run as (cluster-wide, created once, shared by runs).
const serviceRole = "billing_chaos_service"

// asRole is dbURL logged in as user with password.
func asRole(dbURL, user, password string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", err
	}
	u.User = url.UserPassword(user, password)
	return u.String(), nil
}

func freshDatabase(ctx context.Context, serverURL, name string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect %s: %w", serverURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, err
	}
	cfg, _ := pgx.ParseConfig(serverURL)
	u, _ := url.Parse(serverURL)
	u.Path = "/" + name
	drop := func() {
		c, err := pgx.Connect(context.Background(), serverURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
	_ = cfg
	return u.String(), drop, nil
}

func testClockNow(ctx context.Context, c *client) (time.Time, error) {
	a, err := c.do(ctx, "GET", "/v1/test-clock", "", nil)
	if err != nil {
		return time.Time{}, err
	}
	var v struct {
		Now time.Time `json:"now"`
	}
	return v.Now, a.decode(&v)
}

// settled: no outcome unknown and no renewal due.
func settled(ctx context.Context, pool *pgxpool.Pool) bool {
	var n int
	_ = pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM payment_attempts WHERE status IN ('pending', 'unknown'))
		+ (SELECT count(*) FROM subscriptions s, test_clock c WHERE s.status IN ('active', 'trialing', 'past_due')
		   AND s.next_renewal_at <= c.now)`).Scan(&n)
	return n == 0
}

func waitQuiet(ctx context.Context, pool *pgxpool.Pool, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		var busy int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind <> 'sweep'
			AND (state IN ('available', 'running') OR (state = 'retryable' AND scheduled_at < now() + interval '90 seconds'))`).Scan(&busy)
		if busy == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func simCharges(ctx context.Context, c *http.Client, addr string) ([]simCharge, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/__sim/charges", nil)
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var out []simCharge
	return out, json.NewDecoder(res.Body).Decode(&out)
}

type simCharge struct {
	OrderID string `json:"orderId"`
	Amount  string `json:"amount"`
	Status  string `json:"status"`
}
