package migrations_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/internal/testdb"
	"github.com/dunningworks/billing/migrations"
)

// The service's role (DATABASE_URL) may add to the audit log and read it, and nothing else: no rewrite,
// no schema change, no way to switch the append-only triggers off.
func TestServiceRoleCannotRewriteTheAuditLogOrChangeTheSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.Create(t)
	service, owner := testdb.Pool(t, db.URL), testdb.Pool(t, db.OwnerURL)

	_, err := service.Exec(ctx, `INSERT INTO audit_log (at, actor, role, action, target_type, target_id, reason)
		VALUES (now(), 'a', 'support', 'retry', 'invoice', 'inv_1', 'why')`)
	require.NoError(t, err)
	var n int
	require.NoError(t, service.QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&n))
	require.Equal(t, 1, n)

	refused := map[string]string{
		`UPDATE audit_log SET reason = 'rewritten'`:                   "permission denied for table audit_log",
		`DELETE FROM audit_log`:                                       "permission denied for table audit_log",
		`TRUNCATE audit_log`:                                          "permission denied for table audit_log",
		`SELECT * FROM audit_log FOR UPDATE`:                          "permission denied for table audit_log",
		`ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only`: "must be owner of table audit_log",
		`ALTER TABLE audit_log DISABLE TRIGGER ALL`:                   "must be owner of table audit_log",
		`DROP TRIGGER audit_log_append_only ON audit_log`:             "must be owner of relation audit_log",
		`ALTER TABLE audit_log ADD COLUMN note text`:                  "must be owner of table audit_log",
		`DROP TABLE audit_log`:                                        "must be owner of table audit_log",
		`CREATE OR REPLACE FUNCTION reject_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`: "permission denied for schema public",
		`SET session_replication_role = replica`:       "permission denied to set parameter",
		`SET ROLE ` + ownerRole(t, owner):              "permission denied to set role",
		`CREATE TABLE shadow (id int)`:                 "permission denied for schema public",
		`ALTER TABLE customers ADD COLUMN note text`:   "must be owner of table customers",
		`UPDATE ledger_entries SET amount = 0`:         "permission denied for table ledger_entries",
		`DELETE FROM ledger_transactions`:              "permission denied for table ledger_transactions",
		`DELETE FROM goose_db_version`:                 "permission denied for table goose_db_version",
		`UPDATE river_migration SET version = version`: "permission denied for table river_migration",
		`SELECT setval('audit_log_id_seq', 1)`:         "permission denied for sequence audit_log_id_seq",
		`GRANT UPDATE ON audit_log TO PUBLIC`:          "", // no grant option: a warning, and nothing granted
	}
	for stmt, want := range refused {
		_, err := service.Exec(ctx, stmt)
		if want == "" {
			continue
		}
		require.Error(t, err, stmt)
		require.Contains(t, err.Error(), want, stmt)
	}
	_, err = service.Exec(ctx, `UPDATE audit_log SET reason = 'rewritten'`)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "42501", pgErr.Code) // insufficient_privilege: refused before any trigger runs
	require.NoError(t, service.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE reason = 'why'`).Scan(&n))
	require.Equal(t, 1, n)

	// What the service does need still works: rows in its tables, River's queue, the ledger's inserts.
	for _, stmt := range []string{
		`INSERT INTO customers (id, external_id, email, name, created_at) VALUES ('cus_r', 'x', 'e', 'n', now())`,
		`UPDATE customers SET name = 'renamed' WHERE id = 'cus_r'`,
		`DELETE FROM customers WHERE id = 'cus_r'`,
		`INSERT INTO river_job (args, kind, max_attempts, queue, state, scheduled_at) VALUES ('{}', 'probe', 1, 'default', 'available', now())`,
		`UPDATE river_job SET state = 'cancelled', finalized_at = now() WHERE kind = 'probe'`,
		`DELETE FROM river_job WHERE kind = 'probe'`,
		`SELECT count(*) FROM goose_db_version`,
	} {
		_, err := service.Exec(ctx, stmt)
		require.NoError(t, err, stmt)
	}

	problems, err := migrations.RoleProblems(ctx, service)
	require.NoError(t, err)
	require.Empty(t, problems)
	problems, err = migrations.RoleProblems(ctx, owner)
	require.NoError(t, err)
	require.Len(t, problems, 1)
	require.Contains(t, problems[0], "owns the schema's tables")

	reindex, err := migrations.CanReindexRiver(ctx, owner)
	require.NoError(t, err)
	require.True(t, reindex)
}

// `billingd migrate` on a fresh database: the migrations run as the owner and grant the service's role,
// and running it again changes nothing. A single-role setup is reported as one.
func TestMigrateGrantsTheServiceRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	testdb.Create(t) // makes sure the shared service role exists
	admin := testdb.Pool(t, testdb.ServerURL())
	name := "billing_roles_" + randomSuffix(t)
	_, err := admin.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })

	u, err := url.Parse(testdb.ServerURL())
	require.NoError(t, err)
	u.Path = "/" + name
	ownerURL := u.String()
	u.User = url.UserPassword(testdb.ServiceRole, testdb.ServicePassword)
	serviceURL := u.String()

	separate, err := migrations.MigrateURLs(ctx, ownerURL, "")
	require.NoError(t, err)
	require.False(t, separate)
	servicePool := testdb.Pool(t, serviceURL)
	_, err = servicePool.Exec(ctx, `SELECT count(*) FROM customers`)
	require.ErrorContains(t, err, "permission denied", "no grants without a service role")
	separate, err = migrations.MigrateURLs(ctx, ownerURL, ownerURL)
	require.NoError(t, err)
	require.False(t, separate, "one role for both is a single-role setup")

	for range 2 {
		separate, err := migrations.MigrateURLs(ctx, ownerURL, serviceURL)
		require.NoError(t, err)
		require.True(t, separate)
	}
	require.NoError(t, migrations.Check(ctx, servicePool))
	problems, err := migrations.RoleProblems(ctx, servicePool)
	require.NoError(t, err)
	require.Empty(t, problems)
	_, err = servicePool.Exec(ctx, `TRUNCATE audit_log`)
	require.ErrorContains(t, err, "permission denied")
	reindex, err := migrations.CanReindexRiver(ctx, servicePool)
	require.NoError(t, err)
	var version int
	require.NoError(t, servicePool.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version))
	require.Equal(t, version >= 170000, reindex, "before PostgreSQL 17 only the owner may reindex; from 17 the grant allows it")
}

func ownerRole(t *testing.T, owner *pgxpool.Pool) string {
	t.Helper()
	var r string
	require.NoError(t, owner.QueryRow(context.Background(), "SELECT current_user").Scan(&r))
	return r
}
