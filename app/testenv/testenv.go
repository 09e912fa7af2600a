// Package testenv runs a whole billingd (the real App: HTTP stack, River, Postgres) inside a test, on a
// fresh database, with the gateway simulator as the only fake. Tests talk to it over real HTTP.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/internal/config"
	"github.com/dunningworks/billing/internal/keyring"
	"github.com/dunningworks/billing/internal/testdb"
)

// Tokens of the bootstrap keys every Env accepts.
const (
	AdminToken   = "adm_test_token_0123456789"
	ServiceToken = "svc_test_token_0123456789"
	SupportToken = "sup_test_token_0123456789"
)

// DefaultClockStart is where every Env's test clock starts unless TEST_CLOCK_START (RFC 3339) says
// otherwise: the 31st of a month, at midnight in Korea, so a test that assumes a 30-day month or a UTC
// calendar day fails here every time rather than on some days of the year. `make test-calendar` runs the
// suite at other chosen instants (28/29 February, other month ends).
var DefaultClockStart = time.Date(2027, 1, 31, 15, 0, 0, 0, time.UTC)

// ClockStart is the instant this run's test clocks start at.
func ClockStart() time.Time {
	if v := os.Getenv("TEST_CLOCK_START"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			panic("TEST_CLOCK_START must be an RFC 3339 time: " + err.Error())
		}
		return t.UTC()
	}
	return DefaultClockStart
}

// Env is a running billingd.
type Env struct {
	T     testing.TB
	App   *app.App
	URL   string
	DBURL string // the service role's database URL (billingd's DATABASE_URL)
	// OwnerURL is the schema owner's URL (empty when Options.DBURL reused a database without giving it).
	OwnerURL string
	// DBProxy is the proxy between billingd and Postgres (nil unless Options.DBProxy).
	DBProxy *DBProxy
	cancel  context.CancelFunc
	done    chan error
}

// Options tune an Env.
type Options struct {
	// Env overrides environment variables given to config.Load.
	Env map[string]string
	// DBURL reuses an existing database (e.g. a second replica: the first Env's DBURL); empty creates a
	// fresh one.
	DBURL string
	// SimURL points the "sim" gateway at a running pgsim (e.g. another Env's) instead of an embedded one.
	SimURL string
	// App are failpoints and other seams.
	App app.Options
	// DBProxy puts a TCP proxy (Env.DBProxy) between billingd and Postgres, so the test can cut the
	// database off and restore it.
	DBProxy bool
	// PublicURL makes BILLING_PUBLIC_URL the Env's own address, so the links in emails and the URLs the
	// customer page hands a gateway reach this billingd (a browser test follows them).
	PublicURL bool
}

// New starts a billingd for t and stops it when t ends.
func New(t testing.TB, opts ...Options) *Env {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	dbURL, ownerURL := o.DBURL, ""
	if dbURL == "" {
		db := testdb.Create(t)
		dbURL, ownerURL = db.URL, db.OwnerURL
	}
	// Several replicas and parallel tests share one server: keep each pool small.
	appURL := dbURL
	var proxy *DBProxy
	if o.DBProxy {
		proxy, appURL = NewDBProxy(t, dbURL)
	}
	if !strings.Contains(appURL, "pool_max_conns") {
		sep := "?"
		if strings.Contains(appURL, "?") {
			sep = "&"
		}
		appURL += sep + "pool_max_conns=8"
	}
	vars := map[string]string{
		"DATABASE_URL": appURL,
		// Tests need dev mode's conveniences (the test clock, the simulator, loopback webhook receivers);
		// an unset BILLING_MODE would be production.
		"BILLING_MODE":             "dev",
		"BILLING_BOOTSTRAP_KEYS":   "admin:" + AdminToken + ",service:" + ServiceToken + ",support:" + SupportToken,
		"BILLING_TEST_CLOCK":       "1",
		"BILLING_TEST_CLOCK_START": ClockStart().Format(time.RFC3339),
		// Test-clock hours pass in wall-clock milliseconds: an open circuit must not outlive them.
		"BILLING_BREAKER_COOLDOWN": "50ms",
		"BILLING_ENCRYPTION_KEYS":  "1:" + keyring.TestKey,
		"BILLING_LOG_LEVEL":        "warn",
		"BILLING_SHUTDOWN_TIMEOUT": "5s",
	}
	if o.SimURL != "" {
		vars["BILLING_SIM_URL"] = o.SimURL
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	if o.PublicURL {
		vars["BILLING_PUBLIC_URL"] = "http://" + ln.Addr().String()
	}
	for k, v := range o.Env {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	require.NoError(t, err)

	level := slog.LevelWarn
	if os.Getenv("TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log, o.App)
	if err != nil {
		_ = ln.Close()
	}
	require.NoError(t, err)
	e := &Env{T: t, App: a, URL: "http://" + ln.Addr().String(), DBURL: dbURL, OwnerURL: ownerURL, DBProxy: proxy, cancel: cancel, done: make(chan error, 1)}
	go func() { e.done <- a.Serve(ctx, ln) }()
	t.Cleanup(e.Stop)
	return e
}

// Stop shuts the process down gracefully (idempotent).
func (e *Env) Stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	select {
	case <-e.done:
	case <-time.After(30 * time.Second):
		e.T.Errorf("billingd did not stop within 30s")
	}
	e.App.Close()
}

// Response is an HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// Decode decodes the body into v.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.Body, v), "body: %s", r.Body)
}

// Do sends a request. body may be nil, a string/[]byte (sent as is) or a value (JSON-encoded).
// headers are "Name: value" strings. The answer must be one api/openapi.json describes (contract.go):
// anything else fails the test.
func (e *Env) Do(method, path, token string, body any, headers ...string) Response {
	e.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(e.T, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	require.NoError(e.T, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.T, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(e.T, err)
	res := Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	if v := ContractViolation(req, res); v != "" {
		// Errorf, not FailNow: Do is also called from a test's goroutines.
		e.T.Errorf("contract: %s", v)
	}
	return res
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
