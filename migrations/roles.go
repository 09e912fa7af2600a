package migrations

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Two database roles keep the audit log append-only even for the service that writes it:
//
//   - the owner (BILLING_MIGRATION_DATABASE_URL) runs the migrations and owns every table, trigger and
//     function;
//   - the service (DATABASE_URL) reads and writes rows and nothing more: it cannot change the schema, so it
//     cannot drop or disable the append-only triggers, and on the append-only tables it may only INSERT and
//     SELECT, so the database refuses an UPDATE, DELETE or TRUNCATE before any trigger runs.
//
// GrantService is re-run by every migration, so a table a later migration adds is granted with it.

// appendOnly are the tables the service may only add to and read: the audit trail and the ledger.
var appendOnly = []string{"audit_log", "ledger_transactions", "ledger_entries"}

// bookkeeping are the migration tools' own tables: the service reads them (to refuse an unmigrated
// database) and never writes them.
var bookkeeping = []string{"goose_db_version", "river_migration"}

// Migrate applies the migrations through owner (a pool connected as the schema owner) and then grants
// serviceRole what the service needs. An empty serviceRole, or the owner's own role, skips the grants: a
// single-role database still migrates, and billingd warns at start that its audit log is not protected.
func Migrate(ctx context.Context, owner *pgxpool.Pool, serviceRole string) error {
	if err := Up(ctx, owner); err != nil {
		return err
	}
	if serviceRole == "" {
		return nil
	}
	var self string
	if err := owner.QueryRow(ctx, "SELECT current_user").Scan(&self); err != nil {
		return err
	}
	if self == serviceRole {
		return nil
	}
	return GrantService(ctx, owner, serviceRole)
}

// GrantService gives role (the service's login role) row access to the service's tables, insert and read
// only on the append-only ones, read only on the migration bookkeeping, and nothing on the schema itself.
// It runs as the owner, in one transaction, and is idempotent.
func GrantService(ctx context.Context, owner *pgxpool.Pool, role string) error {
	r := pgx.Identifier{role}.Sanitize()
	stmts := grantStatements(r)
	tx, err := owner.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("grant the service role %s: %s: %w", role, s, err)
		}
	}
	// PostgreSQL 17 can let a role that does not own river_job reindex it (River's daily reindexer).
	var version int
	if err := tx.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return err
	}
	if version >= 170000 {
		if _, err := tx.Exec(ctx, "GRANT MAINTAIN ON river_job TO "+r); err != nil {
			return fmt.Errorf("grant the service role %s maintenance of river_job: %w", role, err)
		}
	}
	// Before PostgreSQL 15 every role may create tables in schema public; only its owner can take that back.
	var canCreate, ownsSchema bool
	if err := tx.QueryRow(ctx, `SELECT has_schema_privilege($1, 'public', 'CREATE'),
		pg_has_role(current_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'public'), 'MEMBER')`, role).Scan(&canCreate, &ownsSchema); err != nil {
		return err
	}
	if canCreate && ownsSchema {
		if _, err := tx.Exec(ctx, "REVOKE CREATE ON SCHEMA public FROM PUBLIC"); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// GrantsVersion fingerprints what GrantService grants, so a test template migrated with other grants is
// not reused (internal/testdb).
func GrantsVersion() string {
	h := sha256.Sum256([]byte(strings.Join(grantStatements("role"), ";") + "; river_job MAINTAIN on 17; public CREATE revoked before 15"))
	return hex.EncodeToString(h[:8])
}

func grantStatements(r string) []string {
	ident := func(names []string) string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = pgx.Identifier{n}.Sanitize()
		}
		return strings.Join(out, ", ")
	}
	return []string{
		"GRANT USAGE ON SCHEMA public TO " + r,
		"REVOKE CREATE ON SCHEMA public FROM " + r,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + r,
		"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM " + r,
		"REVOKE UPDATE, DELETE ON " + ident(appendOnly) + " FROM " + r,
		"REVOKE INSERT, UPDATE, DELETE ON " + ident(bookkeeping) + " FROM " + r,
		// nextval needs USAGE; setval (UPDATE) is never the service's business.
		"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO " + r,
		"REVOKE UPDATE ON ALL SEQUENCES IN SCHEMA public FROM " + r,
	}
}

// RoleProblems lists what the pool's role can do that the service's role must not: rewrite the audit log
// (as a superuser, as a member of its owner, or by privilege) or change the schema. Empty means the
// database enforces the audit log's append-only rule against the service itself.
func RoleProblems(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	var (
		role                                 string
		super, owner, rewrite, ddl, replicas bool
	)
	err := pool.QueryRow(ctx, `
		SELECT current_user, r.rolsuper,
		       pg_has_role(current_user, c.relowner, 'MEMBER'),
		       has_table_privilege('audit_log', 'UPDATE') OR has_table_privilege('audit_log', 'DELETE')
		           OR has_table_privilege('audit_log', 'TRUNCATE'),
		       has_schema_privilege('public', 'CREATE'),
		       r.rolreplication OR r.rolbypassrls
		FROM pg_roles r, pg_class c
		WHERE r.rolname = current_user AND c.oid = 'audit_log'::regclass`).Scan(&role, &super, &owner, &rewrite, &ddl, &replicas)
	if err != nil {
		return nil, fmt.Errorf("read the database role's privileges: %w", err)
	}
	var out []string
	switch {
	case super:
		out = append(out, fmt.Sprintf("role %s is a superuser: it can rewrite the audit log and disable its triggers", role))
	case owner:
		out = append(out, fmt.Sprintf("role %s owns the schema's tables: it can disable the audit log's triggers and rewrite it", role))
	default:
		if rewrite {
			out = append(out, fmt.Sprintf("role %s may UPDATE, DELETE or TRUNCATE the audit log", role))
		}
		if ddl {
			out = append(out, fmt.Sprintf("role %s may create objects in schema public", role))
		}
		if replicas {
			out = append(out, fmt.Sprintf("role %s has REPLICATION or BYPASSRLS", role))
		}
	}
	return out, nil
}

// CanReindexRiver reports whether the pool's role may REINDEX River's job table, as River's daily
// maintenance does: its owner may, and on PostgreSQL 17 a role granted MAINTAIN. billingd turns River's
// reindexer off when it may not, rather than have it fail every night.
func CanReindexRiver(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var owner bool
	var version int
	if err := pool.QueryRow(ctx, `SELECT pg_has_role(current_user, c.relowner, 'MEMBER'), current_setting('server_version_num')::int
		FROM pg_class c WHERE c.oid = 'river_job'::regclass`).Scan(&owner, &version); err != nil {
		return false, err
	}
	if owner || version < 170000 {
		return owner, nil
	}
	var maintain bool
	err := pool.QueryRow(ctx, "SELECT has_table_privilege('river_job', 'MAINTAIN')").Scan(&maintain)
	return maintain, err
}

// EnsureRole creates a login role with password and attributes (e.g. "NOSUPERUSER NOCREATEDB") through
// admin, a connection that may create roles, unless it exists. Roles are cluster-wide, so several test
// processes and developers' runs share one: creating it twice at once is not an error.
func EnsureRole(ctx context.Context, admin *pgxpool.Pool, name, password, attributes string) error {
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	// CREATE ROLE takes no parameters; the password is a quoted literal.
	pw := "'" + strings.ReplaceAll(password, "'", "''") + "'"
	_, err := admin.Exec(ctx, "CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" LOGIN PASSWORD "+pw+" "+attributes)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42710" || pgErr.Code == "23505") {
		return nil // another process created it first (duplicate_object, or the catalog's unique index)
	}
	if err != nil {
		return fmt.Errorf("create role %s: %w", name, err)
	}
	return nil
}

// MigrateURLs is Migrate for `billingd migrate` and `billingctl migrate`: it connects to ownerURL and
// grants the role serviceURL logs in as (none when serviceURL is empty). It reports whether the two are
// separate roles, which is what keeps the audit log append-only against the service.
func MigrateURLs(ctx context.Context, ownerURL, serviceURL string) (separate bool, err error) {
	var serviceRole string
	if serviceURL != "" {
		cfg, err := pgconn.ParseConfig(serviceURL)
		if err != nil {
			return false, fmt.Errorf("DATABASE_URL: %w", err)
		}
		serviceRole = cfg.User
	}
	pool, err := pgxpool.New(ctx, ownerURL)
	if err != nil {
		return false, err
	}
	defer pool.Close()
	if err := Migrate(ctx, pool, serviceRole); err != nil {
		return false, err
	}
	var self string
	if err := pool.QueryRow(ctx, "SELECT current_user").Scan(&self); err != nil {
		return false, err
	}
	return serviceRole != "" && serviceRole != self, nil
}
