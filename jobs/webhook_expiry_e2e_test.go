package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/internal/testdb"
)

// Processed inbox rows older than BILLING_WEBHOOK_RETENTION are deleted by a periodic job that also runs
// when the workers start; younger ones stay, and an unprocessed row stays whatever its age.
func TestWebhookInboxExpiry(t *testing.T) {
	t.Parallel()
	url := testdb.URL(t)
	pool := testdb.Pool(t, url)
	start := testenv.ClockStart() // domain time: the rows' stamps and the expiry's clock
	day := 24 * time.Hour
	insert := func(id string, received time.Time, processed *time.Time) {
		t.Helper()
		_, err := pool.Exec(context.Background(), `INSERT INTO webhook_inbox
			(gateway, event_id, event_kind, order_id, payload, received_at, dispatched_at, processed_at, result)
			VALUES ('sim', $1, 'other', NULL, '\x7b7d', $2, $2, $3, CASE WHEN $3::timestamptz IS NULL THEN NULL ELSE 'ignored' END)`,
			id, received, processed)
		require.NoError(t, err)
	}
	at := func(d time.Duration) *time.Time { v := start.Add(-d); return &v }
	insert("evt-old", *at(40 * day), at(31*day))
	insert("evt-old-2", *at(35 * day), at(30*day+time.Hour))
	insert("evt-young", *at(29*day + time.Hour), at(29*day))
	insert("evt-recent", *at(time.Hour), at(time.Hour))

	env := testenv.New(t, testenv.Options{DBURL: url, Env: map[string]string{"BILLING_WEBHOOK_RETENTION": "720h"}})
	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE event_id IN ('evt-old', 'evt-old-2')`) == 0
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 2, env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE event_id IN ('evt-young', 'evt-recent')`))

	// Unprocessed rows are never deleted, however old: a row nobody acted on is the event's only record.
	// (Inserted with the service running and processed_at left empty; the job that would process it is
	// not given the chance before the expiry runs, because it is never dispatched: dispatched_at is set.)
	_, err := pool.Exec(context.Background(), `INSERT INTO webhook_inbox
		(gateway, event_id, event_kind, payload, received_at, dispatched_at)
		VALUES ('sim', 'evt-unprocessed', 'other', '\x7b7d', $1, $1)`, start.Add(90*day))
	require.NoError(t, err)
	n, err := env.App.Billing.ExpireWebhooks(context.Background(), start.Add(365*day))
	require.NoError(t, err)
	require.EqualValues(t, 2, n, "every processed row is older than a year from now; the unprocessed one is not touched")
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM webhook_inbox WHERE event_id = 'evt-unprocessed'`))
}
