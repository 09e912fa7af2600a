package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The EXPLAIN runs the sweeper's own SQL: every due-work query billing.DueWork calls is found in
// internal/store/queries/billing_*.sql and turned into positional parameters.
func TestDueQueriesAreReadFromTheSqlcSources(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	q, err := dueQueries(root)
	require.NoError(t, err)
	for _, name := range []string{"DueRenewals", "DueCollections", "DueAttemptLookups", "DueGraceEnds", "DueDunningEnds", "DueIncompleteExpiries"} {
		sql, ok := q[name]
		require.True(t, ok, name)
		require.NotContains(t, sql, "@", name)
		require.Contains(t, sql, "$1::timestamptz", name)
		require.Contains(t, sql, "$2::int", name)
		require.False(t, strings.HasSuffix(sql, ";"), name)
	}
	require.Contains(t, q["DueRenewals"], "FROM subscriptions")
}

// Open loop: a server stall is charged to every request scheduled during it, as a user would see it,
// instead of delaying the sending of those requests (which a closed loop does, hiding the stall).
func TestOpenLoopChargesAStallToTheRequestsBehindIt(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	first := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if first {
			first = false
			time.Sleep(300 * time.Millisecond)
		}
	}))
	defer srv.Close()
	res := openLoop(context.Background(), srv.Client(), 100, time.Second, func(int) (*http.Request, error) {
		return http.NewRequest(http.MethodGet, srv.URL, nil)
	})
	require.Equal(t, 100, res.Requests)
	require.Zero(t, res.Errors)
	require.GreaterOrEqual(t, res.MaxMs, 290.0)
	// About 30 of the 100 were scheduled during the stall, so about 20 waited 100 ms or more: the p90 is
	// inside the stall (a closed loop would have sent them after it, each taking a millisecond). Nothing
	// is asserted of the p50: on a loaded machine every request can take 100 ms, which says nothing about
	// the loop (a timing bound would make this test fail on a busy CI host, not on a wrong loop).
	require.GreaterOrEqual(t, res.P90Ms, 100.0)
}

func TestPgbenchSummaryIsParsed(t *testing.T) {
	t.Parallel()
	out := []byte("number of transactions actually processed: 33297\nlatency average = 7.207 ms\n" +
		"initial connection time = 25.119 ms\ntps = 2219.832 (without initial connection time)\n")
	m := tpsLine.FindSubmatch(out)
	require.NotNil(t, m)
	require.Equal(t, "2219.832", string(m[1]))
	require.Equal(t, "7.207", string(latLine.FindSubmatch(out)[1]))
}

func TestPlanSummaryNamesTheScan(t *testing.T) {
	t.Parallel()
	plan, err := os.ReadFile(filepath.Join("testdata", "due_renewals_plan.txt"))
	require.NoError(t, err)
	require.Equal(t, "bitmap index range scan on subscriptions_due, 1000 rows, buffers shared hit=1005, 5.780 ms", planSummary(string(plan)))
	require.Contains(t, planSummary("Seq Scan on subscriptions (actual rows=1000 loops=1)\n  Buffers: shared hit=9\n"), "SEQ SCAN")
}
