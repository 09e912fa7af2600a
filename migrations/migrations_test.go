package migrations_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/internal/testdb"
	"github.com/dunningworks/billing/migrations"
)

func TestCheckRefusesUnmigratedDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A template-less empty database: create one by hand.
	admin := testdb.Pool(t, testdb.ServerURL())
	name := "billing_unmigrated_" + randomSuffix(t)
	_, err := admin.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })

	cfg, err := pgxpool.ParseConfig(testdb.ServerURL())
	require.NoError(t, err)
	cfg.ConnConfig.Database = name
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()

	err = migrations.Check(ctx, pool)
	require.ErrorIs(t, err, migrations.ErrNotMigrated)
	require.Contains(t, err.Error(), "billingd migrate")

	require.NoError(t, migrations.Up(ctx, pool))
	require.NoError(t, migrations.Check(ctx, pool))
	// Running it again is a no-op.
	require.NoError(t, migrations.Up(ctx, pool))
}

// The triggers are the second wall: even the schema's owner, who may UPDATE, DELETE and TRUNCATE by
// privilege, is refused (the service's role is refused before them; roles_test.go).
func TestAuditLogIsInsertOnlyEvenForTheOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.Pool(t, testdb.Create(t).OwnerURL)
	_, err := pool.Exec(ctx, `INSERT INTO audit_log (at, actor, role, action, target_type, target_id, reason)
		VALUES (now(), 'a', 'support', 'retry', 'invoice', 'inv_1', 'why')`)
	require.NoError(t, err)
	for _, stmt := range []string{
		`UPDATE audit_log SET reason = 'rewritten'`,
		`DELETE FROM audit_log`,
		`TRUNCATE audit_log`,
	} {
		_, err := pool.Exec(ctx, stmt)
		require.Error(t, err, stmt)
		require.Contains(t, err.Error(), "append-only", stmt)
	}
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE reason = 'why'`).Scan(&n))
	require.Equal(t, 1, n)
}

func TestLedgerTransactionsMustBalance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.Create(t)
	pool := testdb.Pool(t, db.URL)

	post := func(ref string, amounts ...string) error {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		var id int64
		require.NoError(t, tx.QueryRow(ctx, `INSERT INTO ledger_transactions (kind, reference, created_at)
			VALUES ('test', $1, now()) RETURNING id`, ref).Scan(&id))
		for i, a := range amounts {
			_, err := tx.Exec(ctx, `INSERT INTO ledger_entries (transaction_id, account, currency, amount)
				VALUES ($1, $2, 'KRW', $3::numeric)`, id, []string{"a", "b", "c"}[i], a)
			require.NoError(t, err)
		}
		return tx.Commit(ctx)
	}
	require.NoError(t, post("balanced", "100", "-60", "-40"))
	err := post("unbalanced", "100", "-60")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "23514", pgErr.Code) // check_violation, raised at commit
	require.Contains(t, pgErr.Message, "does not balance")

	_, err = pool.Exec(ctx, `UPDATE ledger_entries SET amount = 1`)
	require.ErrorContains(t, err, "permission denied", "the service's role may only add to the ledger")
	owner := testdb.Pool(t, db.OwnerURL)
	_, err = owner.Exec(ctx, `UPDATE ledger_entries SET amount = 1`)
	require.ErrorContains(t, err, "append-only", "and the owner is stopped by the trigger")
}

func TestFences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	exec := func(sql string, args ...any) error {
		_, err := pool.Exec(ctx, sql, args...)
		return err
	}
	require.NoError(t, exec(`INSERT INTO customers (id, external_id, email, name, created_at) VALUES ('cus_1', 'x', 'e', 'n', now())`))
	require.NoError(t, exec(`INSERT INTO plans (id, code, name, amount, currency, interval, interval_count, created_at)
		VALUES ('plan_1', 'basic', 'Basic', 9900, 'KRW', 'month', 1, now())`))
	require.NoError(t, exec(`INSERT INTO subscriptions (id, customer_id, plan_id, status, billing_anchor, current_period_start,
		current_period_end, created_at, updated_at) VALUES ('sub_1', 'cus_1', 'plan_1', 'active', '2026-01-01', '2026-01-01', '2026-02-01', now(), now())`))

	invoice := `INSERT INTO invoices (id, customer_id, subscription_id, kind, status, currency, period_start, period_end, created_at)
		VALUES ($1, 'cus_1', 'sub_1', 'renewal', 'open', 'KRW', '2026-02-01', '2026-03-01', now())`
	require.NoError(t, exec(invoice, "inv_1"))
	requireUniqueViolation(t, exec(invoice, "inv_2"), "invoices_one_per_period")

	attempt := `INSERT INTO payment_attempts (id, invoice_id, customer_id, gateway, seq, order_id, idempotency_key, amount, currency, status, created_at)
		VALUES ($1, 'inv_1', 'cus_1', 'sim', $2, $3, $4, 9900, 'KRW', $5, now())`
	require.NoError(t, exec(attempt, "pay_1", 1, "ord-1", "idem-1", "unknown"))
	requireUniqueViolation(t, exec(attempt, "pay_2", 2, "ord-2", "idem-2", "pending"), "payment_attempts_one_in_flight")
	requireUniqueViolation(t, exec(attempt, "pay_3", 3, "ord-1", "idem-3", "declined"), "payment_attempts_order_id_key")
	require.NoError(t, exec(attempt, "pay_4", 4, "ord-4", "idem-4", "declined"))

	// A used plan's amount is immutable.
	require.ErrorContains(t, exec(`UPDATE plans SET amount = 1 WHERE id = 'plan_1'`), "immutable")
	require.NoError(t, exec(`UPDATE plans SET name = 'Renamed' WHERE id = 'plan_1'`))
}

func requireUniqueViolation(t *testing.T, err error, constraint string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "23505", pgErr.Code)
	require.Equal(t, constraint, pgErr.ConstraintName)
}
