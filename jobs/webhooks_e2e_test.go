package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/internal/testdb"
)

// An inbox row whose processing job was lost (River discarded it, or a replica died between the two) is
// found by the watch, which runs when the workers start, and processed: the table is the truth.
func TestWebhookWatchRecoversInboxRowsWithoutAJob(t *testing.T) {
	t.Parallel()
	url := testdb.URL(t)
	pool := testdb.Pool(t, url)
	_, err := pool.Exec(context.Background(), `INSERT INTO webhook_inbox (gateway, event_id, event_kind, order_id, payload, received_at)
		VALUES ('sim', 'evt-lost', 'payment_status_changed', 'inv_lost-1', '\x7b7d', now() - interval '1 minute')`)
	require.NoError(t, err)

	env := testenv.New(t, testenv.Options{DBURL: url})
	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE event_id = 'evt-lost' AND result = 'unknown_order'`) == 1
	}, 10*time.Second, 20*time.Millisecond)
}
