package api

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/testdb"
	"github.com/dunningworks/billing/notify"
)

// These tests drive the idempotency middleware with stand-in handlers on real route patterns, to make
// outcomes (5xx, panics, dead owners, slow owners) that the real handlers cannot be made to produce on
// demand. The end-to-end behavior with the real handlers is in idempotency_test.go.

const idemToken = "svc_idem_internal_token_0123"

type idemFixture struct {
	t    *testing.T
	s    *Server
	pool *pgxpool.Pool
	h    http.Handler
}

// newIdemFixture mounts handlers (pattern -> handler) behind the production middleware chain.
func newIdemFixture(t *testing.T, handlers map[string]http.HandlerFunc) *idemFixture {
	t.Helper()
	return newIdemFixtureOn(t, testdb.New(t), handlers)
}

// newIdemFixtureOn is newIdemFixture on a given pool.
func newIdemFixtureOn(t *testing.T, pool *pgxpool.Pool, handlers map[string]http.HandlerFunc) *idemFixture {
	t.Helper()
	s := New(Deps{Pool: pool, Bootstrap: []BootstrapToken{{Role: RoleService, Token: idemToken}}})
	r := chi.NewRouter()
	r.Use(recoverer)
	r.Group(func(r chi.Router) {
		r.Use(limitBody, s.authenticate, s.rateLimit, s.idempotency)
		for pattern, h := range handlers {
			r.Post(pattern, h)
		}
	})
	return &idemFixture{t: t, s: s, pool: pool, h: r}
}

func (f *idemFixture) post(path, key, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+idemToken)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set(IdempotencyHeader, key)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

// abandon leaves behind what a process killed mid-request leaves: the key in progress, its lock lapsed.
func (f *idemFixture) abandon(path, key, body string) {
	f.t.Helper()
	scope := HashToken(idemToken)
	_, err := f.pool.Exec(context.Background(), `INSERT INTO idempotency_keys
		(scope, method, path, key, request_hash, status, locked_until, created_at)
		VALUES ($1, 'POST', $2, $3, $4, 'in_progress', now() - interval '1 second', now() - interval '1 minute')`,
		hex.EncodeToString(scope[:12]), path, key, requestHash("", []byte(body)))
	require.NoError(f.t, err)
}

func counting(calls *atomic.Int32, statuses ...int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1))
		status := statuses[min(n, len(statuses))-1]
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("ETag", `"7"`)
		writeJSON(w, status, map[string]any{"call": n})
	}
}

func TestIdempotencyReleasesA5xxOnlyWhereARerunIsSafe(t *testing.T) {
	t.Parallel()
	var safe, unsafe atomic.Int32
	f := newIdemFixture(t, map[string]http.HandlerFunc{
		"/v1/customers":         counting(&safe, 503, 201),
		"/v1/webhook-endpoints": counting(&unsafe, 500, 201),
	})

	// Safe route: the 503 is not stored, so the retry with the same key runs the handler again.
	require.Equal(t, 503, f.post("/v1/customers", "k1", `{"a":1}`).Code)
	res := f.post("/v1/customers", "k1", `{"a":1}`)
	require.Equal(t, 201, res.Code)
	require.Empty(t, res.Header().Get(ReplayedHeader))
	res = f.post("/v1/customers", "k1", `{"a":1}`)
	require.Equal(t, 201, res.Code)
	require.Equal(t, "true", res.Header().Get(ReplayedHeader))
	require.JSONEq(t, `{"call":2}`, res.Body.String())
	require.Equal(t, `"7"`, res.Header().Get("ETag"))
	require.EqualValues(t, 2, safe.Load())

	// Unsafe route: the first run may have taken effect before failing, so its 500 is the answer for good.
	require.Equal(t, 500, f.post("/v1/webhook-endpoints", "k1", `{"a":1}`).Code)
	res = f.post("/v1/webhook-endpoints", "k1", `{"a":1}`)
	require.Equal(t, 500, res.Code)
	require.Equal(t, "true", res.Header().Get(ReplayedHeader))
	require.EqualValues(t, 1, unsafe.Load())
}

func TestIdempotencyAfterTheOwnerDied(t *testing.T) {
	t.Parallel()
	var safe, unsafe atomic.Int32
	f := newIdemFixture(t, map[string]http.HandlerFunc{
		"/v1/customers":         counting(&safe, 201),
		"/v1/webhook-endpoints": counting(&unsafe, 201),
	})

	// Safe to re-run: the retry takes the key over, runs the handler, and its answer is stored.
	f.abandon("/v1/customers", "dead", `{"x":"y"}`)
	res := f.post("/v1/customers", "dead", `{"x":"y"}`)
	require.Equal(t, 201, res.Code, res.Body.String())
	require.Empty(t, res.Header().Get(ReplayedHeader))
	require.Equal(t, "true", f.post("/v1/customers", "dead", `{"x":"y"}`).Header().Get(ReplayedHeader))
	require.EqualValues(t, 1, safe.Load())

	// Not safe: the handler is never run again; the caller is told the outcome is unknown.
	f.abandon("/v1/webhook-endpoints", "dead", `{"x":"y"}`)
	res = f.post("/v1/webhook-endpoints", "dead", `{"x":"y"}`)
	require.Equal(t, 409, res.Code)
	require.Contains(t, res.Body.String(), `"code":"idempotency_key_interrupted"`)
	require.Equal(t, "application/problem+json", res.Header().Get("Content-Type"))
	require.Zero(t, unsafe.Load())

	// Another body under the dead key is still a reuse.
	require.Contains(t, f.post("/v1/customers", "dead", `{"x":"z"}`).Body.String(), `"code":"idempotency_key_reused"`)
}

func TestIdempotencyHeartbeatKeepsASlowRequestItsKey(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{})
	var calls atomic.Int32
	f := newIdemFixture(t, map[string]http.HandlerFunc{
		"/v1/customers": func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			close(started)
			<-release
			writeJSON(w, 201, map[string]string{"id": "cus_1"})
		},
	})
	// Short enough that the test outlives the lock several times, long enough that a heartbeat (every
	// third of it) delayed by a loaded machine does not let the lock lapse.
	f.s.idemLock = time.Second

	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- f.post("/v1/customers", "slow", `{}`) }()
	<-started
	// Well past the lock's length: only the heartbeat keeps the key from looking abandoned.
	time.Sleep(2500 * time.Millisecond)
	res := f.post("/v1/customers", "slow", `{}`)
	require.Equal(t, 409, res.Code)
	require.Contains(t, res.Body.String(), `"code":"idempotency_key_in_use"`)
	close(release)
	require.Equal(t, 201, (<-first).Code)

	res = f.post("/v1/customers", "slow", `{}`)
	require.Equal(t, 201, res.Code)
	require.Equal(t, "true", res.Header().Get(ReplayedHeader))
	require.EqualValues(t, 1, calls.Load())
}

func TestIdempotencyPanicReleasesTheKeyOfASafeRoute(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	f := newIdemFixture(t, map[string]http.HandlerFunc{
		"/v1/customers": func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				panic("boom")
			}
			writeJSON(w, 201, map[string]string{"id": "cus_1"})
		},
	})
	res := f.post("/v1/customers", "p", `{}`)
	require.Equal(t, 500, res.Code)
	require.NotContains(t, res.Body.String(), "boom")
	require.Equal(t, 201, f.post("/v1/customers", "p", `{}`).Code)
	require.EqualValues(t, 2, calls.Load())
}

func TestIdempotencyKeyLengthAndCanonicalBodies(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	f := newIdemFixture(t, map[string]http.HandlerFunc{"/v1/customers": counting(&calls, 201)})

	res := f.post("/v1/customers", strings.Repeat("k", 256), `{}`)
	require.Equal(t, 422, res.Code)
	require.Contains(t, res.Body.String(), `"code":"idempotency_key_invalid"`)
	require.Zero(t, calls.Load())
	// 255 characters is the limit, counted in characters, not bytes.
	require.Equal(t, 201, f.post("/v1/customers", strings.Repeat("é", 255), `{}`).Code)

	// The same JSON, re-encoded with other key order and spacing, is the same request.
	require.Equal(t, 201, f.post("/v1/customers", "c", `{"a":1,"b":[true,null]}`).Code)
	res = f.post("/v1/customers", "c", "{ \"b\": [true, null],\n \"a\": 1 }")
	require.Equal(t, 201, res.Code)
	require.Equal(t, "true", res.Header().Get(ReplayedHeader))
	// A different number is a different request, even if it is numerically equal as a float.
	require.Equal(t, 422, f.post("/v1/customers", "c", `{"a":1.0,"b":[true,null]}`).Code)
	require.EqualValues(t, 2, calls.Load())
}

func TestRequestsWithoutAKeyAreNotRecorded(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	f := newIdemFixture(t, map[string]http.HandlerFunc{"/v1/customers": counting(&calls, 201)})
	require.Equal(t, 201, f.post("/v1/customers", "", `{}`).Code)
	require.Equal(t, 201, f.post("/v1/customers", "", `{}`).Code)
	require.EqualValues(t, 2, calls.Load())
	var n int
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM idempotency_keys`).Scan(&n))
	require.Zero(t, n)
}

// A typo or a renamed route in rerunSafe would silently make that route unsafe (the conservative
// default), or keep a stale entry: every entry must be a POST route the API serves.
func TestRerunSafeNamesServedPostRoutes(t *testing.T) {
	t.Parallel()
	posts := map[string]bool{}
	// With a notify service, so the webhook endpoints' routes are served too.
	require.NoError(t, chi.Walk(New(Deps{Notify: notify.New(notify.Config{})}).Router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if method == http.MethodPost {
			posts[route] = true
		}
		return nil
	}))
	for route := range rerunSafe {
		require.True(t, posts[route], "rerunSafe lists %s, which is not a served POST route", route)
	}
	require.False(t, rerunSafe["/v1/subscriptions/{id}/change-plan"], "a re-run would withdraw a scheduled change")
}

func TestRateLimitedRequestsNeverClaimAKey(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	f := newIdemFixture(t, map[string]http.HandlerFunc{"/v1/customers": counting(&calls, 201)})
	clk := &fakeNow{t: time.Unix(0, 0)}
	f.s.limiter = newRateLimiter(1, clk.now)
	require.Equal(t, 201, f.post("/v1/customers", "first", `{}`).Code)
	res := f.post("/v1/customers", "second", `{}`)
	require.Equal(t, 429, res.Code)
	var n int
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM idempotency_keys WHERE key = 'second'`).Scan(&n))
	require.Zero(t, n, "a 429 must leave the key free for the retry")
	clk.add(time.Second)
	res = f.post("/v1/customers", "second", `{}`)
	require.Equal(t, 201, res.Code)
	require.Empty(t, res.Header().Get(ReplayedHeader))
}

// A request that failed and committed nothing (the database went away) leaves no answer under its key,
// even on a route whose first outcome is otherwise kept: the retry runs. One that sent a write keeps its
// answer there, because the write may have taken effect.
func TestIdempotencyKeepsNoAnswerForARequestThatCommittedNothing(t *testing.T) {
	t.Parallel()
	db := testdb.Create(t)
	cfg, err := pgxpool.ParseConfig(db.URL)
	require.NoError(t, err)
	cfg.ConnConfig.Tracer = dbx.WriteTracer{} // as app.New sets it
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	outage := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

	var readRuns, txRuns, writeRuns atomic.Int32
	f := newIdemFixtureOn(t, pool, map[string]http.HandlerFunc{
		// Reads, then loses the database.
		"/v1/subscriptions/{id}/change-plan": func(w http.ResponseWriter, r *http.Request) {
			var one int
			require.NoError(t, pool.QueryRow(r.Context(), "SELECT 1").Scan(&one))
			if readRuns.Add(1) == 1 {
				writeError(w, r, outage)
				return
			}
			writeJSON(w, http.StatusOK, map[string]int{"run": int(readRuns.Load())})
		},
		// Writes inside a transaction that never commits.
		"/v1/invoices/{id}/refunds": func(w http.ResponseWriter, r *http.Request) {
			err := dbx.InTx(r.Context(), pool, func(tx pgx.Tx) error {
				_, err := tx.Exec(r.Context(), "UPDATE idempotency_keys SET key = key WHERE false")
				require.NoError(t, err)
				return outage
			})
			if txRuns.Add(1) == 1 {
				writeError(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]int{"run": int(txRuns.Load())})
		},
		// Sends a write outside a transaction, then fails.
		"/v1/test-clock/advance": func(w http.ResponseWriter, r *http.Request) {
			_, err := pool.Exec(r.Context(), "UPDATE idempotency_keys SET key = key WHERE false")
			require.NoError(t, err)
			writeRuns.Add(1)
			writeError(w, r, outage)
		},
	})

	res := f.post("/v1/subscriptions/sub_1/change-plan", "k-read", `{}`)
	require.Equal(t, http.StatusServiceUnavailable, res.Code, res.Body.String())
	require.Equal(t, "1", res.Header().Get("Retry-After"))
	res = f.post("/v1/subscriptions/sub_1/change-plan", "k-read", `{}`)
	require.Equal(t, http.StatusOK, res.Code, res.Body.String())
	require.Empty(t, res.Header().Get(ReplayedHeader))
	require.EqualValues(t, 2, readRuns.Load())

	res = f.post("/v1/invoices/inv_1/refunds", "k-tx", `{}`)
	require.Equal(t, http.StatusServiceUnavailable, res.Code, res.Body.String())
	res = f.post("/v1/invoices/inv_1/refunds", "k-tx", `{}`)
	require.Equal(t, http.StatusOK, res.Code, res.Body.String())
	require.EqualValues(t, 2, txRuns.Load())

	res = f.post("/v1/test-clock/advance", "k-write", `{}`)
	require.Equal(t, http.StatusServiceUnavailable, res.Code, res.Body.String())
	res = f.post("/v1/test-clock/advance", "k-write", `{}`)
	require.Equal(t, http.StatusServiceUnavailable, res.Code, res.Body.String())
	require.Equal(t, "true", res.Header().Get(ReplayedHeader), "a request that sent a write keeps its answer")
	require.EqualValues(t, 1, writeRuns.Load())
}
