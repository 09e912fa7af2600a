// Package dbx holds the small database vocabulary shared across packages: the query interface that a pool
// and a transaction both satisfy (the same shape as sqlc's generated DBTX), and a transaction helper.
package dbx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DBTX is satisfied by *pgxpool.Pool, *pgx.Conn and pgx.Tx.
type DBTX interface {
	Exec(context.Context, string, ...interface{}) (pgconn.CommandTag, error)
	Query(context.Context, string, ...interface{}) (pgx.Rows, error)
	QueryRow(context.Context, string, ...interface{}) pgx.Row
}

// InTx runs f in a transaction, committing when f returns nil and rolling back otherwise.
func InTx(ctx context.Context, pool *pgxpool.Pool, f func(tx pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := f(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique violation, of constraint when it is not empty.
func IsUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && (constraint == "" || pgErr.ConstraintName == constraint)
}

// IsForeignKeyViolation reports whether err is a foreign-key violation.
func IsForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

// IsUnavailable reports whether err means the database could not be reached or dropped the connection
// (refused, reset, timed out, shutting down, pool closed): nothing about the request was wrong, and a
// retry once the database is back may succeed. The API answers these 503 service_unavailable.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01-03: admin/crash shutdown, cannot connect now.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), pgconn.Timeout(err):
		return true
	}
	// pgx reports a connection that died under a query as "conn closed" / "unexpected EOF" without a
	// typed error in every path.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "closed pool") ||
		strings.Contains(msg, "unexpected EOF") || strings.Contains(msg, "failed to connect")
}

type writeTrackerKey struct{}

// WriteTracker records whether a request's database work may have committed anything. Install one with
// TrackWrites; the pool's tracer (WriteTracer) marks it.
type WriteTracker struct{ wrote atomic.Bool }

// Wrote reports whether a COMMIT or a write outside a transaction was sent on the tracked context. A
// statement that was sent may have taken effect even if its answer was lost, so "sent" is what counts.
func (t *WriteTracker) Wrote() bool { return t.wrote.Load() }

// Assume marks the tracker as if a write was sent (for a pool that is not traced).
func (t *WriteTracker) Assume() { t.wrote.Store(true) }

// Traces reports whether pool's connections are traced by WriteTracer.
func Traces(pool *pgxpool.Pool) bool {
	if pool == nil {
		return false
	}
	_, ok := pool.Config().ConnConfig.Tracer.(WriteTracer)
	return ok
}

// TrackWrites returns a context whose database statements mark the returned tracker.
func TrackWrites(ctx context.Context) (context.Context, *WriteTracker) {
	t := &WriteTracker{}
	return context.WithValue(ctx, writeTrackerKey{}, t), t
}

// WriteTracer is a pgx query tracer that marks the context's WriteTracker (if any) when a statement that
// can make a change durable is sent: COMMIT, or anything but a plain read while no transaction is open.
// Statements inside a transaction that never commits change nothing and are not counted.
type WriteTracer struct{}

// TraceQueryStart implements pgx.QueryTracer.
func (WriteTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	t, _ := ctx.Value(writeTrackerKey{}).(*WriteTracker)
	if t == nil || t.wrote.Load() {
		return ctx
	}
	sql := strings.ToLower(strings.TrimSpace(data.SQL))
	switch {
	case strings.HasPrefix(sql, "commit"):
		t.wrote.Store(true)
	case strings.HasPrefix(sql, "begin"), strings.HasPrefix(sql, "rollback"), strings.HasPrefix(sql, "select"),
		strings.HasPrefix(sql, "show"), strings.HasPrefix(sql, "-- name: ") && readQuery(sql):
	default:
		if conn != nil && conn.PgConn().TxStatus() == 'I' {
			t.wrote.Store(true)
		}
	}
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (WriteTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// readQuery: an sqlc statement ("-- name: X :one\nSELECT ...") whose body is a plain SELECT.
func readQuery(sql string) bool {
	_, body, ok := strings.Cut(sql, "\n")
	return ok && strings.HasPrefix(strings.TrimSpace(body), "select")
}
