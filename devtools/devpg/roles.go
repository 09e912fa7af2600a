package devpg

import (
	"context"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dunningworks/billing/migrations"
)

// The development database's two roles, as production has them (docs/security.md): the owner runs the
// migrations and owns the schema; billingd logs in as the service, which may read and write rows but not
// rewrite the audit log or change the schema. Their passwords are their names: development servers trust
// loopback, and a password-checking one still lets them in.
const (
	OwnerRole   = "billing_owner"
	ServiceRole = "billing_service"
)

// RoleURLs are the development database's two connection URLs.
type RoleURLs struct {
	Owner   string // BILLING_MIGRATION_DATABASE_URL
	Service string // DATABASE_URL
}

// Roles sets the two roles up on the database adminURL names (a role that may create roles: what Ensure
// returns) and returns their URLs. It is idempotent. A database from before the roles is handed to the owner,
// with everything in its public schema, so its data survives the change.
func Roles(ctx context.Context, adminURL string) (RoleURLs, error) {
	admin, err := pgxpool.New(ctx, adminURL)
	if err != nil {
		return RoleURLs{}, err
	}
	defer admin.Close()
	if err := migrations.EnsureRole(ctx, admin, OwnerRole, OwnerRole, "NOSUPERUSER CREATEDB NOCREATEROLE"); err != nil {
		return RoleURLs{}, err
	}
	if err := migrations.EnsureRole(ctx, admin, ServiceRole, ServiceRole, "NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"); err != nil {
		return RoleURLs{}, err
	}
	var db string
	if err := admin.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		return RoleURLs{}, err
	}
	if db == "postgres" || db == "template1" {
		return RoleURLs{}, fmt.Errorf("devpg: refusing to hand database %q to %s: name the development database in the URL", db, OwnerRole)
	}
	owner := pgx.Identifier{OwnerRole}.Sanitize()
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" OWNER TO "+owner); err != nil {
		return RoleURLs{}, fmt.Errorf("devpg: hand database %s to %s: %w", db, OwnerRole, err)
	}
	if _, err := admin.Exec(ctx, handOver); err != nil {
		return RoleURLs{}, fmt.Errorf("devpg: hand the objects of %s to %s: %w", db, OwnerRole, err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return RoleURLs{}, err
	}
	as := func(role string) string {
		v := *u
		v.User = url.UserPassword(role, role)
		return v.String()
	}
	return RoleURLs{Owner: as(OwnerRole), Service: as(ServiceRole)}, nil
}

// handOver gives billing_owner what an earlier, single-role development database left to another role:
// tables, views and free-standing sequences (a column's sequence follows its table), functions and types.
const handOver = `
DO $$
DECLARE o record;
BEGIN
  FOR o IN
    SELECT format('ALTER %s %I.%I OWNER TO billing_owner',
                  CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
                  n.nspname, c.relname) AS stmt
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
      AND c.relowner <> 'billing_owner'::regrole
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
    UNION ALL
    SELECT format('ALTER FUNCTION %s OWNER TO billing_owner', p.oid::regprocedure)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.proowner <> 'billing_owner'::regrole
    UNION ALL
    SELECT format('ALTER TYPE %I.%I OWNER TO billing_owner', n.nspname, t.typname)
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd') AND t.typowner <> 'billing_owner'::regrole
  LOOP
    EXECUTE o.stmt;
  END LOOP;
END $$`
