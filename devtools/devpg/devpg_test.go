package devpg_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/devtools/devpg"
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
