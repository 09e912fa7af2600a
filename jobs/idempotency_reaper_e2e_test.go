package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/internal/testdb"
)

// The reaper is registered as a periodic job that also runs when the workers start.
func TestIdempotencyReaperRunsInBillingd(t *testing.T) {
	t.Parallel()
	url := testdb.URL(t)
	pool := testdb.Pool(t, url)
	_, err := pool.Exec(context.Background(), `INSERT INTO idempotency_keys
		(scope, method, path, key, request_hash, status, created_at)
		VALUES ('s', 'POST', '/v1/customers', 'old', '\x00', 'completed', now() - interval '30 hours'),
		       ('s', 'POST', '/v1/customers', 'new', '\x00', 'completed', now() - interval '1 hour')`)
	require.NoError(t, err)

	env := testenv.New(t, testenv.Options{DBURL: url})
	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM idempotency_keys WHERE key = 'old'`) == 0
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM idempotency_keys WHERE key = 'new'`))
}
