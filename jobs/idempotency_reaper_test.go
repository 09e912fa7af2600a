package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/testdb"
)

func TestIdempotencyReaperKeepsKeysForADay(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for key, age := range map[string]time.Duration{"fresh": time.Hour, "day-minus": 23*time.Hour + 59*time.Minute, "old": 25 * time.Hour, "ancient": 400 * time.Hour} {
		_, err := pool.Exec(context.Background(), `INSERT INTO idempotency_keys
			(scope, method, path, key, request_hash, status, created_at) VALUES ('s', 'POST', '/v1/customers', $1, '\x00', 'completed', $2)`,
			key, now.Add(-age))
		require.NoError(t, err)
	}
	w := &idempotencyReapWorker{pool: pool, clock: clock.NewFixed(now)}
	require.NoError(t, w.Work(context.Background(), nil))

	rows, err := pool.Query(context.Background(), `SELECT key FROM idempotency_keys ORDER BY key`)
	require.NoError(t, err)
	var left []string
	for rows.Next() {
		var k string
		require.NoError(t, rows.Scan(&k))
		left = append(left, k)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"day-minus", "fresh"}, left)
}
