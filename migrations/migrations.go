// Package migrations owns the database schema: the service's own goose migrations (embedded SQL under
// sql/) and River's queue tables, applied together by one command so a database is never half-migrated
// between the two.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/dunningworks/billing/internal/dbx"
)

//go:embed sql/*.sql
var files embed.FS

// FS is the embedded migration SQL (also read by sqlc as the schema).
func FS() fs.FS {
	sub, err := fs.Sub(files, "sql")
	if err != nil {
		panic(err)
	}
	return sub
}

// ErrNotMigrated means the database lacks some of the service's or River's migrations.
var ErrNotMigrated = errors.New("database is not migrated: run `billingd migrate` (or `make run`, which does it)")

// Up applies River's migrations and then the service's own. It is safe to run concurrently from several
// replicas: goose takes a session lock, and River's migrator works in a transaction.
func Up(ctx context.Context, pool *pgxpool.Pool) error {
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := newProvider(db)
	if err != nil {
		return err
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("service migrations: %w", err)
	}
	return nil
}

// Check returns ErrNotMigrated (wrapped with what is missing) unless both River's and the service's
// migrations are current.
func Check(ctx context.Context, pool *pgxpool.Pool) error {
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	res, err := migrator.Validate(ctx, nil)
	if dbx.IsUnavailable(err) || ctx.Err() != nil {
		// A database that cannot be asked is not known to be unmigrated (a fast shutdown closes the pool).
		return fmt.Errorf("check migrations: %w", err)
	}
	if err != nil {
		return fmt.Errorf("%w (river: %v)", ErrNotMigrated, err)
	}
	if !res.OK {
		return fmt.Errorf("%w (river: %s)", ErrNotMigrated, strings.Join(res.Messages, "; "))
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := newProvider(db)
	if err != nil {
		return err
	}
	current, target, err := provider.GetVersions(ctx)
	if dbx.IsUnavailable(err) || ctx.Err() != nil {
		return fmt.Errorf("check migrations: %w", err)
	}
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrNotMigrated, err)
	}
	if current < target {
		return fmt.Errorf("%w (schema version %d, want %d)", ErrNotMigrated, current, target)
	}
	return nil
}

func newProvider(db *sql.DB) (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectPostgres, db, FS())
	if err != nil {
		return nil, fmt.Errorf("goose provider: %w", err)
	}
	return p, nil
}
