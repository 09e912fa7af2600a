package migrations_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/internal/testdb"
	"github.com/dunningworks/billing/migrations"
)

// 00009 numbers the invoices finalized before numbering existed, in finalization order, leaves drafts
// without a number, and continues the counter after them.
func TestDocumentNumbersMigrationNumbersExistingInvoices(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := testdb.Pool(t, testdb.ServerURL())
	name := "billing_numbers_" + randomSuffix(t)
	_, err := admin.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	cfg, err := pgxpool.ParseConfig(testdb.ServerURL())
	require.NoError(t, err)
	cfg.ConnConfig.Database = name
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()

	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS())
	require.NoError(t, err)
	_, err = p.UpTo(ctx, 8)
	require.NoError(t, err)

	_, err = pool.Exec(ctx, `
		INSERT INTO customers (id, external_id, email, name, created_at) VALUES ('cus_1', 'e1', 'a@b.c', 'A', now());
		INSERT INTO invoices (id, customer_id, kind, status, currency, period_start, period_end, created_at, finalized_at) VALUES
		  ('inv_b', 'cus_1', 'manual', 'paid', 'KRW', now(), now(), now(), '2027-01-02T00:00:00Z'),
		  ('inv_a', 'cus_1', 'manual', 'void', 'KRW', now(), now(), now(), '2027-01-01T00:00:00Z'),
		  ('inv_d', 'cus_1', 'manual', 'draft', 'KRW', now(), now(), now(), NULL),
		  ('inv_c', 'cus_1', 'manual', 'open', 'KRW', now(), now(), now(), '2027-01-03T00:00:00Z');`)
	require.NoError(t, err)

	require.NoError(t, migrations.Up(ctx, pool))
	got := map[string]*string{}
	rows, err := pool.Query(ctx, `SELECT id, number FROM invoices`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		var n *string
		require.NoError(t, rows.Scan(&id, &n))
		got[id] = n
	}
	require.NoError(t, rows.Err())
	require.Equal(t, "INV-000001", *got["inv_a"])
	require.Equal(t, "INV-000002", *got["inv_b"])
	require.Equal(t, "INV-000003", *got["inv_c"])
	require.Nil(t, got["inv_d"])
	var last int
	require.NoError(t, pool.QueryRow(ctx, `SELECT last_number FROM document_number_counters WHERE prefix = 'INV'`).Scan(&last))
	require.Equal(t, 3, last)
}
