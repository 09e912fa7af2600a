package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dunningworks/billing/migrations"
)

// server is the Postgres server of DATABASE_URL. The database named in the URL is only used to issue
// CREATE/DROP DATABASE for the scratch databases; nothing is ever written to it.
type server struct {
	base *url.URL
	// suffix is appended to every scratch database's name (-db-suffix), so two runs can share a server.
	suffix string
}

// dbName is a scratch database's name on the server.
func (s *server) dbName(name string) string { return name + s.suffix }

func newServer(raw string) (*server, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("DATABASE_URL must be a postgres:// URL")
	}
	return &server{base: u}, nil
}

// url is DATABASE_URL with the database replaced by name (query parameters such as sslmode kept).
func (s *server) url(name string) string {
	u := *s.base
	u.Path = "/" + s.dbName(name)
	return u.String()
}

func (s *server) admin(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, s.base.String())
}

// recreate drops (forcibly: a killed earlier run may have left sessions) and creates a scratch database.
func (s *server) recreate(ctx context.Context, name string) error {
	if !strings.HasPrefix(name, "bench_") {
		panic("bench: refusing to recreate a database not named bench_*: " + name)
	}
	name = s.dbName(name)
	c, err := s.admin(ctx)
	if err != nil {
		return fmt.Errorf("connect to DATABASE_URL: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	return nil
}

func (s *server) drop(ctx context.Context, name string) {
	if !strings.HasPrefix(name, "bench_") {
		panic("bench: refusing to drop a database not named bench_*: " + name)
	}
	name = s.dbName(name)
	c, err := s.admin(ctx)
	if err != nil {
		return
	}
	defer c.Close(ctx)
	_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// migrated recreates name and applies the service's and River's migrations to it.
func (s *server) migrated(ctx context.Context, name string) (*pgxpool.Pool, error) {
	if err := s.recreate(ctx, name); err != nil {
		return nil, err
	}
	pool, err := s.pool(ctx, name, 8)
	if err != nil {
		return nil, err
	}
	if err := migrations.Up(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate %s: %w", name, err)
	}
	return pool, nil
}

// benchApp is the application_name of the bench's own connections, so the wait samples and the CPU split
// can leave them out.
const benchApp = "bench-monitor"

func (s *server) pool(ctx context.Context, name string, conns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(s.url(name))
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = conns
	cfg.ConnConfig.RuntimeParams["application_name"] = benchApp
	return pgxpool.NewWithConfig(ctx, cfg)
}

// dbStats are pg_stat_database's counters of one database.
type dbStats struct {
	Commits, Rollbacks, BlocksRead, BlocksHit int64
}

func readDBStats(ctx context.Context, db *pgxpool.Pool) (dbStats, error) {
	var s dbStats
	// The counters are flushed by each backend when it goes idle (at most once a second), so callers
	// wait a little before the final reading.
	err := db.QueryRow(ctx, `SELECT xact_commit, xact_rollback, blks_read, blks_hit FROM pg_stat_database
		WHERE datname = current_database()`).Scan(&s.Commits, &s.Rollbacks, &s.BlocksRead, &s.BlocksHit)
	return s, err
}

// waitSample is one look at what the scratch database's backends are doing.
type waitSample map[string]int

// sampleWaits counts the database's busy backends by what they wait on: "CPU" when running, a wait event
// (Lock:transactionid, LWLock:WALWrite, IO:WALSync, ...) when waiting, and "IdleInTx" when a transaction is
// open but the server waits for billingd's next statement. Over a run it shows whether the time went to
// Postgres's CPU, to locks, to WAL flushes (commits), or to the service itself.
func sampleWaits(ctx context.Context, db *pgxpool.Pool, into waitSample) error {
	rows, err := db.Query(ctx, `SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'CPU')
			ELSE 'IdleInTx' END, count(*)
		FROM pg_stat_activity
		WHERE datname = current_database() AND state IN ('active', 'idle in transaction')
		  AND application_name <> '`+benchApp+`'
		GROUP BY 1`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return err
		}
		into[k] += n
	}
	return rows.Err()
}

// findPgbench looks for pgbench on PATH and in Debian's versioned server directories.
func findPgbench() string {
	if p, err := exec.LookPath("pgbench"); err == nil {
		// Debian's /usr/bin/pgbench is pg_wrapper, which needs a cluster configuration to pick a
		// version; the versioned binary always works.
		if matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench"); len(matches) > 0 {
			return matches[len(matches)-1]
		}
		return p
	}
	if matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench"); len(matches) > 0 {
		return matches[len(matches)-1]
	}
	return ""
}

// ensurePgbench finds pgbench or, as root on Debian, installs it: bookworm ships it in the server package
// that postgresql-contrib depends on, later releases in postgresql-client.
func ensurePgbench(ctx context.Context, logf func(string, ...any)) (string, error) {
	if p := findPgbench(); p != "" {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("pgbench not found; install it (Debian: apt-get install postgresql-contrib postgresql-client)")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("pgbench not found and apt-get is not available to install it")
	}
	logf("pgbench missing: installing postgresql-client and postgresql-contrib with apt-get")
	ictx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "postgresql-client", "postgresql-contrib"}} {
		cmd := exec.CommandContext(ictx, "apt-get", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get %s: %w\n%s", args[0], err, tail(string(out), 2000))
		}
	}
	if p := findPgbench(); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("pgbench still not found after installing postgresql-client and postgresql-contrib")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
