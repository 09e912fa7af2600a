// Package testdb gives each test a fresh, fully migrated Postgres database, cloned from a template that is
// migrated once per schema version (peterldowns/pgtestdb). Tests run against a real server: the one in
// DATABASE_URL (set by `make test`), else 127.0.0.1:5432.
//
// Like production, each database has two roles: the owner (pgtestdb's role), which ran the migrations and
// owns every table, and the service role, which the migrations granted row access and nothing more. URL and
// New connect as the service, as billingd does; OwnerURL is for the few tests that need the owner.
// The grants are made once, in the template, so a clone costs what it did before.
package testdb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver pgtestdb uses
	"github.com/peterldowns/pgtestdb"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/dunningworks/billing/migrations"
)

// ServerURL is the Postgres server tests use.
func ServerURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// ServiceRole is the login role tests' billingd runs as. Roles are cluster-wide and shared by every test
// process on the server, so it is created once, idempotently, and never changed or dropped.
const (
	ServiceRole     = "billing_test_service"
	ServicePassword = "billing_test_service" // not a secret: trust or a test server
)

// DB is one test database's two connections.
type DB struct {
	URL      string // the service role's: what billingd's DATABASE_URL is
	OwnerURL string // the schema owner's: what ran the migrations
}

// Create creates a fresh migrated database for t. It is dropped when t ends.
func Create(t testing.TB) DB {
	t.Helper()
	conf := serverConfig(t)
	conf.ForceTerminateConnections = true
	ensureServiceRole(t)
	owner := pgtestdb.Custom(&dropTB{TB: t}, conf, migrator{})
	service := *owner
	service.User, service.Password = ServiceRole, ServicePassword
	return DB{URL: service.URL(), OwnerURL: owner.URL()}
}

// URL creates a fresh migrated database for t and returns the service role's URL to it.
func URL(t testing.TB) string {
	t.Helper()
	return Create(t).URL
}

// New creates a fresh migrated database for t and returns a pool on it as the service role, closed when
// t ends.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return Pool(t, URL(t))
}

var serviceRoleOnce struct {
	sync.Once
	err error
}

func ensureServiceRole(t testing.TB) {
	t.Helper()
	serviceRoleOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgxpool.New(ctx, ServerURL())
		if err != nil {
			serviceRoleOnce.err = err
			return
		}
		defer admin.Close()
		serviceRoleOnce.err = migrations.EnsureRole(ctx, admin, ServiceRole, ServicePassword, "NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT")
	})
	if serviceRoleOnce.err != nil {
		t.Fatalf("test service role %s: %v", ServiceRole, serviceRoleOnce.err)
	}
}

// Pool opens a pool on dbURL, closed when t ends.
func Pool(t testing.TB, dbURL string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("parse %s: %v", dbURL, err)
	}
	cfg.MaxConns = 20
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect %s: %v", dbURL, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func serverConfig(t testing.TB) pgtestdb.Config {
	t.Helper()
	u, err := url.Parse(ServerURL())
	if err != nil {
		t.Fatalf("DATABASE_URL: %v", err)
	}
	pass, _ := u.User.Password()
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	host := u.Hostname()
	q := u.Query()
	if h := q.Get("host"); h != "" { // unix socket directory form
		host = h
		q.Del("host")
	}
	if q.Get("sslmode") == "" {
		q.Set("sslmode", "disable")
	}
	db := u.Path
	if len(db) > 0 && db[0] == '/' {
		db = db[1:]
	}
	if db == "" {
		db = "postgres"
	}
	return pgtestdb.Config{
		DriverName: "pgx",
		Host:       host,
		Port:       port,
		User:       u.User.Username(),
		Password:   pass,
		Database:   db,
		Options:    q.Encode(),
	}
}

// migrator applies the service's migrations (and River's) to the template database.
type migrator struct{}

func (migrator) Hash() (string, error) {
	h := sha256.New()
	var names []string
	err := fs.WalkDir(migrations.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, path)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := fs.ReadFile(migrations.FS(), n)
		if err != nil {
			return "", err
		}
		h.Write([]byte(n))
		h.Write(b)
	}
	m, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		return "", err
	}
	all := m.AllVersions()
	h.Write([]byte{byte(all[len(all)-1].Version)})
	h.Write([]byte("grants to " + ServiceRole + " " + migrations.GrantsVersion())) // the template carries the grants
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func (migrator) Migrate(ctx context.Context, _ *sql.DB, conf pgtestdb.Config) error {
	pool, err := pgxpool.New(ctx, conf.URL())
	if err != nil {
		return err
	}
	defer pool.Close()
	return migrations.Migrate(ctx, pool, ServiceRole)
}
