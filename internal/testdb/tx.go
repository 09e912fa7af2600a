package testdb

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/peterldowns/pgtestdb"
)

// Tx begins a transaction for t on a migrated database shared by every test that asks for one, and rolls
// it back when t ends (river's TestTx): a domain test that needs tables but not a whole app starts in
// milliseconds, and sees neither other tests' rows nor leaves its own. The transaction is the service
// role's, like billingd's. It is not for concurrency tests (one transaction is one connection), nor for
// code that must commit to be seen; use New for those. Use unique ids: two tests inserting the same
// unique key would wait on each other.
func Tx(t testing.TB) pgx.Tx {
	t.Helper()
	pool := sharedPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatalf("begin test transaction: %v", err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

var shared struct {
	sync.Mutex
	pool *pgxpool.Pool
}

// sharedPool opens (once per test binary) the shared database: a clone of the migrated template named
// after it, made by the first test binary that needs it and reused by every later one, like the template
// itself. Nothing is ever committed to it, so it stays as migrated.
func sharedPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.pool != nil {
		return shared.pool
	}
	conf := serverConfig(t)
	ensureServiceRole(t)
	// A throwaway instance names the current template (pgtestdb names instances <template>_inst_<random>).
	inst := pgtestdb.Custom(t, conf, migrator{})
	template, _, ok := strings.Cut(inst.Database, "_inst_")
	if !ok {
		t.Fatalf("cannot tell the template from the test database name %q", inst.Database)
	}
	name := template + "_tx"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := pgxpool.New(ctx, conf.URL())
	if err != nil {
		t.Fatalf("connect %s: %v", conf.Host, err)
	}
	defer admin.Close()
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatalf("look up %s: %v", name, err)
	}
	if !exists {
		_, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{template}.Sanitize())
		var pgErr *pgconn.PgError
		// 42P04: another test binary made it first.
		if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P04") {
			t.Fatalf("create shared test database %s: %v", name, err)
		}
	}
	service := conf
	service.Database, service.User, service.Password = name, ServiceRole, ServicePassword
	cfg, err := pgxpool.ParseConfig(service.URL())
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	shared.pool = pool // lives as long as the test binary
	return pool
}
