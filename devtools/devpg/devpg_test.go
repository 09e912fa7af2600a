package devpg_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/devtools/devpg"
	"github.com/dunningworks/billing/internal/testdb"
)

// TestPrivateCluster proves the path a newcomer without a Postgres server takes: initdb + pg_ctl into a
// fresh folder, a database created, a connection answered, and a second Ensure reusing the running server.
func TestPrivateCluster(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The data dir must be traversable by the postgres user when we run as root.
	base, err := os.MkdirTemp("", "devpg-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(base, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(base) })

	port, err := devpg.FreePort()
	require.NoError(t, err)
	var log bytes.Buffer
	// As in a fresh clone: devpg itself creates .data/ and .data/pg under the checkout.
	opts := devpg.Options{DataDir: filepath.Join(base, ".data", "pg"), Port: port, SkipLocal: true, Database: "billing_devpg_test", Log: &log}
	t.Cleanup(func() { _ = devpg.StopPrivate(context.Background(), opts) })

	url, err := devpg.Ensure(ctx, opts)
	require.NoError(t, err, log.String())
	require.Contains(t, log.String(), "initializing a private cluster")
	require.Contains(t, url, "/billing_devpg_test?")

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	var db string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&db))
	require.Equal(t, "billing_devpg_test", db)
	require.NoError(t, conn.Close(ctx))

	// Second call finds the running cluster and does not initialize again.
	log.Reset()
	url2, err := devpg.Ensure(ctx, opts)
	require.NoError(t, err)
	require.Equal(t, url, url2)
	require.NotContains(t, log.String(), "initializing")
	_, err = os.Stat(filepath.Join(base, ".data", "pg", "data", "PG_VERSION"))
	require.NoError(t, err)
}

// make run's roles on a development database from before them: the database and its objects go to the
// owner (data kept), the service gets rows only once migrations grant it, and a second run changes nothing.
func TestRolesHandAnOldDatabaseToTheOwner(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fmt.Sprintf("billing_devpg_roles_%d", time.Now().UnixNano()%1e9)
	server := testdb.Pool(t, testdb.ServerURL())
	_, err := server.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = server.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	u, err := url.Parse(testdb.ServerURL())
	require.NoError(t, err)
	u.Path = "/" + name
	adminURL := u.String()
	old, err := pgx.Connect(ctx, adminURL)
	require.NoError(t, err)
	_, err = old.Exec(ctx, `CREATE TABLE kept (id bigserial PRIMARY KEY, note text); INSERT INTO kept (note) VALUES ('from before')`)
	require.NoError(t, err)
	require.NoError(t, old.Close(ctx))

	for range 2 {
		urls, err := devpg.Roles(ctx, adminURL)
		require.NoError(t, err)
		require.Contains(t, urls.Owner, "billing_owner")
		require.Contains(t, urls.Service, "billing_service")
		require.Contains(t, urls.Owner, "/"+name+"?")

		owner, err := pgx.Connect(ctx, urls.Owner)
		require.NoError(t, err)
		var note, dbOwner string
		require.NoError(t, owner.QueryRow(ctx, `SELECT note FROM kept`).Scan(&note))
		require.Equal(t, "from before", note)
		_, err = owner.Exec(ctx, `ALTER TABLE kept ADD COLUMN IF NOT EXISTS extra int`)
		require.NoError(t, err, "the owner owns the old tables")
		require.NoError(t, owner.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()`).Scan(&dbOwner))
		require.Equal(t, devpg.OwnerRole, dbOwner)
		require.NoError(t, owner.Close(ctx))

		service, err := pgx.Connect(ctx, urls.Service)
		require.NoError(t, err)
		_, err = service.Exec(ctx, `SELECT * FROM kept`)
		require.ErrorContains(t, err, "permission denied", "rows are the service's only once migrations grant them")
		require.NoError(t, service.Close(ctx))
	}
}
