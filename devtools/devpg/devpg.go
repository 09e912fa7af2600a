// Package devpg finds a Postgres server for a developer's machine, or starts a private one.
//
// The order is the one README.md promises: the server already answering on 127.0.0.1:5432; otherwise a
// private cluster under .data/ started with the PostgreSQL server binaries (initdb, pg_ctl), installing
// Debian's postgresql package first when they are missing and we are root. The server binaries refuse to
// run as root, so as root the cluster belongs to the postgres user and is driven through runuser.
package devpg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options tune Ensure.
type Options struct {
	// DataDir holds the private cluster (default ".data/pg").
	DataDir string
	// Port of the private cluster (default 55432, so it never collides with a system server).
	Port int
	// SkipLocal ignores a server on 127.0.0.1:5432 (used to prove the private-cluster path).
	SkipLocal bool
	// Database is created if missing and named in the returned URL (default "billing").
	Database string
	// Log receives progress lines (default os.Stderr).
	Log io.Writer
}

func (o *Options) defaults() {
	if o.DataDir == "" {
		o.DataDir = ".data/pg"
	}
	if o.Port == 0 {
		o.Port = 55432
	}
	if o.Database == "" {
		o.Database = "billing"
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
}

// LocalURL is the server this machine is expected to run, if any.
const LocalURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Ensure returns the URL of a reachable server with opts.Database created on it.
func Ensure(ctx context.Context, opts Options) (string, error) {
	opts.defaults()
	if !opts.SkipLocal && answers(ctx, LocalURL) {
		fmt.Fprintln(opts.Log, "devpg: using the Postgres server on 127.0.0.1:5432")
		return withDatabase(ctx, LocalURL, opts.Database)
	}
	admin, err := StartPrivate(ctx, opts)
	if err != nil {
		return "", err
	}
	return withDatabase(ctx, admin, opts.Database)
}

// PrivateURL is the admin URL of the private cluster for opts.
func PrivateURL(opts Options) string {
	opts.defaults()
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", opts.Port)
}

// StartPrivate initializes (once) and starts the private cluster, returning its admin URL.
func StartPrivate(ctx context.Context, opts Options) (string, error) {
	opts.defaults()
	url := PrivateURL(opts)
	if answers(ctx, url) {
		return url, nil
	}
	bin, err := serverBinaries(opts.Log)
	if err != nil {
		return "", err
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return "", err
	}
	pgdata := filepath.Join(dataDir, "data")
	runDir := filepath.Join(dataDir, "run")
	// 0755 on the way down: as root the server runs as the postgres user, which must be able to reach
	// the cluster through .data/ (initdb makes the data directory itself private).
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return "", err
	}
	if err := os.Chmod(filepath.Dir(dataDir), 0o755); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	runAs, err := serverUser()
	if err != nil {
		return "", err
	}
	if runAs != nil {
		if err := chownTree(dataDir, runAs); err != nil {
			return "", err
		}
	}
	if _, err := os.Stat(filepath.Join(pgdata, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(opts.Log, "devpg: initializing a private cluster in %s\n", pgdata)
		if err := run(ctx, opts.Log, runAs, filepath.Join(bin, "initdb"), "-D", pgdata, "-U", "postgres",
			"--auth=trust", "-E", "UTF8", "--no-locale"); err != nil {
			return "", fmt.Errorf("initdb: %w", err)
		}
	}
	fmt.Fprintf(opts.Log, "devpg: starting the private cluster on 127.0.0.1:%d\n", opts.Port)
	serverOpts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on",
		opts.Port, runDir)
	if err := run(ctx, opts.Log, runAs, filepath.Join(bin, "pg_ctl"), "-D", pgdata, "-o", serverOpts,
		"-l", filepath.Join(dataDir, "server.log"), "-w", "-t", "60", "start"); err != nil {
		return "", fmt.Errorf("pg_ctl start (see %s): %w", filepath.Join(dataDir, "server.log"), err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !answers(ctx, url) {
		if time.Now().After(deadline) {
			return "", fmt.Errorf("private cluster did not answer on port %d", opts.Port)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return url, nil
}

// StopPrivate stops the private cluster in opts.DataDir if it runs.
func StopPrivate(ctx context.Context, opts Options) error {
	opts.defaults()
	bin, err := serverBinaries(opts.Log)
	if err != nil {
		return err
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return err
	}
	runAs, err := serverUser()
	if err != nil {
		return err
	}
	return run(ctx, opts.Log, runAs, filepath.Join(bin, "pg_ctl"), "-D", filepath.Join(dataDir, "data"), "-m", "fast", "-w", "stop")
}

func answers(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return false
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx) == nil
}

func withDatabase(ctx context.Context, adminURL, db string) (string, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
			var again bool
			// Two processes may race to create it; the loser is fine if it now exists.
			if qerr := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&again); qerr != nil || !again {
				return "", fmt.Errorf("create database %s: %w", db, err)
			}
		}
	}
	return strings.Replace(adminURL, "/postgres?", "/"+db+"?", 1), nil
}

// serverBinaries finds the directory with initdb and pg_ctl, installing Debian's postgresql if needed.
func serverBinaries(log io.Writer) (string, error) {
	if dir := findBinaries(); dir != "" {
		return dir, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found: install the postgresql package, or set DATABASE_URL")
	}
	fmt.Fprintln(log, "devpg: installing Debian's postgresql package (server binaries are missing)")
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "postgresql"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, log, log
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("apt-get %s: %w", args[0], err)
		}
	}
	if dir := findBinaries(); dir != "" {
		return dir, nil
	}
	return "", errors.New("postgresql installed but initdb still not found")
}

func findBinaries() string {
	// Debian keeps the server binaries off PATH, in /usr/lib/postgresql/<version>/bin; prefer the newest.
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) > versionOf(matches[j]) })
	for _, m := range matches {
		return filepath.Dir(m)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p)
		}
	}
	return ""
}

func versionOf(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

// serverUser is the user to run the server as: nil (ourselves) unless we are root.
func serverUser() (*user.User, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, the server needs the postgres user (install the postgresql package): %w", err)
	}
	return u, nil
}

func chownTree(dir string, u *user.User) error {
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

func run(ctx context.Context, log io.Writer, as *user.User, name string, args ...string) error {
	if as != nil {
		args = append([]string{"-u", as.Username, "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// pg_ctl start leaves the postmaster running with our stdout unless it has its own log file (-l).
	cmd.WaitDelay = 5 * time.Second
	return cmd.Run()
}

// FreePort returns a free TCP port on loopback.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
