package notify_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/keyring"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/testdb"
	"github.com/dunningworks/billing/notify"
)

// queue is the job queue as notify sees it: it records the tickets, and like River's unique jobs it holds
// a ticket once while it waits.
type queue struct {
	mu      sync.Mutex
	tickets []notify.Ticket
}

func (q *queue) EnqueueTx(_ context.Context, _ pgx.Tx, ts ...notify.Ticket) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, t := range ts {
		if !slices.Contains(q.tickets, t) {
			q.tickets = append(q.tickets, t)
		}
	}
	return nil
}

func (q *queue) take() []notify.Ticket {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.tickets
	q.tickets = nil
	return out
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type fixture struct {
	svc  *notify.Service
	pool *pgxpool.Pool
	q    *queue
	reg  *prometheus.Registry
	keys map[int][]byte
}

func newKeys(versions ...int) map[int][]byte {
	keys := map[int][]byte{}
	for _, v := range versions {
		k := make([]byte, keyring.KeySize)
		_, _ = rand.Read(k)
		keys[v] = k
	}
	return keys
}

func newRing(t *testing.T, keys map[int][]byte) *keyring.Ring {
	t.Helper()
	r, err := keyring.New(keys)
	require.NoError(t, err)
	return r
}

func newFixture(t *testing.T, tu notify.Tuning, wall ...clock.Clock) *fixture {
	t.Helper()
	var w clock.Clock
	if len(wall) > 0 {
		w = wall[0]
	}
	f := &fixture{pool: testdb.New(t), q: &queue{}, reg: prometheus.NewRegistry(), keys: newKeys(1)}
	f.svc = notify.New(notify.Config{Pool: f.pool, KeyRing: newRing(t, f.keys), Registry: f.reg, Tuning: tu, Log: quiet, Wall: w, AllowPrivateNetworks: true})
	f.svc.SetEnqueuer(f.q)
	return f
}

func (f *fixture) endpoint(t *testing.T, url string, events ...string) notify.CreatedEndpoint {
	t.Helper()
	ep, err := f.svc.CreateEndpoint(context.Background(), notify.NewEndpoint{URL: url, Events: events})
	require.NoError(t, err)
	return ep
}

func insertEvent(t *testing.T, db dbx.DBTX, typ string) string {
	t.Helper()
	id := ids.New("evt")
	_, err := db.Exec(context.Background(), `INSERT INTO events (id, type, data, occurred_at) VALUES ($1, $2, '{"n": 1}', now())`, id, typ)
	require.NoError(t, err)
	return id
}

func (f *fixture) fanOut(t *testing.T) notify.FanOutResult {
	t.Helper()
	res, err := f.svc.FanOut(context.Background())
	require.NoError(t, err)
	return res
}

func (f *fixture) deliveredEvents(t *testing.T) []string {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT event_id FROM webhook_deliveries ORDER BY id`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

// receiver is an httptest endpoint that answers with the next status of its script (the last one
// repeats) and keeps every request.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	script []int
	reqs   []received
}

type received struct {
	header http.Header
	body   []byte
	at     time.Time
}

func newReceiver(t *testing.T, script ...int) *receiver {
	t.Helper()
	r := &receiver{script: script}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, received{header: req.Header.Clone(), body: body, at: time.Now()})
		status := 200
		if n := len(r.reqs) - 1; len(r.script) > 0 {
			status = r.script[min(n, len(r.script)-1)]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
		_, _ = w.Write([]byte("status " + http.StatusText(status) + "\x00\xff"))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

func TestFanOutWaitsForATransactionThatCommitsLate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, notify.Tuning{GapGrace: 10 * time.Millisecond, GapTimeout: time.Hour})
	f.endpoint(t, "http://127.0.0.1:9/hook", "*")

	late, err := f.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = late.Rollback(ctx) }()
	lateID := insertEvent(t, late, "invoice.paid") // seq 1, not committed yet
	earlyID := insertEvent(t, f.pool, "invoice.paid")

	res := f.fanOut(t)
	require.True(t, res.Waiting)
	require.Zero(t, res.Events, "seq 2 is visible, but seq 1 may still commit: do not pass it")
	time.Sleep(30 * time.Millisecond) // past the grace: still waiting, the transaction is open
	res = f.fanOut(t)
	require.True(t, res.Waiting)
	require.Empty(t, f.deliveredEvents(t))

	require.NoError(t, late.Commit(ctx))
	res = f.fanOut(t)
	require.False(t, res.Waiting)
	require.Equal(t, 2, res.Events)
	require.Equal(t, []string{lateID, earlyID}, f.deliveredEvents(t), "both, in seq order")
	require.Len(t, f.q.take(), 2)
}

func TestFanOutSkipsASeqWhoseTransactionRolledBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, notify.Tuning{GapGrace: 50 * time.Millisecond, GapTimeout: time.Hour})
	f.endpoint(t, "http://127.0.0.1:9/hook", "*")

	doomed, err := f.pool.Begin(ctx)
	require.NoError(t, err)
	insertEvent(t, doomed, "invoice.paid")
	kept := insertEvent(t, f.pool, "invoice.paid")
	require.True(t, f.fanOut(t).Waiting)
	require.NoError(t, doomed.Rollback(ctx))

	require.True(t, f.fanOut(t).Waiting, "within the grace the gap is kept even though nothing can fill it")
	// The gap passes once every transaction in progress when it was seen has ended, and a snapshot lists
	// the whole server's: on a server shared with other tests (a database being created or dropped takes
	// seconds under load) that can outlast 5 s. GapTimeout is an hour, so only "rolled back" can pass it.
	require.Eventually(t, func() bool { return !f.fanOut(t).Waiting }, 60*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{kept}, f.deliveredEvents(t))
	require.Equal(t, 1.0, counter(t, f.reg, "billing_webhook_outbox_gaps_skipped_total", "reason", "rolled_back"))
}

func TestFanOutGivesUpOnATransactionOpenPastTheTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, notify.Tuning{GapGrace: 10 * time.Millisecond, GapTimeout: 100 * time.Millisecond})
	f.endpoint(t, "http://127.0.0.1:9/hook", "*")

	stuck, err := f.pool.Begin(ctx)
	require.NoError(t, err)
	insertEvent(t, stuck, "invoice.paid")
	kept := insertEvent(t, f.pool, "invoice.paid")
	require.True(t, f.fanOut(t).Waiting)
	require.Eventually(t, func() bool { return !f.fanOut(t).Waiting }, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{kept}, f.deliveredEvents(t))
	require.Equal(t, 1.0, counter(t, f.reg, "billing_webhook_outbox_gaps_skipped_total", "reason", "timeout"))

	// The documented cost of the timeout: an event committed after it is not delivered.
	require.NoError(t, stuck.Commit(ctx))
	require.Zero(t, f.fanOut(t).Events)
	require.Equal(t, []string{kept}, f.deliveredEvents(t))
}

// counter reads one labelled counter from the registry (0 when it has no such series).
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestOnlyOneFanOutAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, notify.Tuning{})
	f.endpoint(t, "http://127.0.0.1:9/hook", "*")
	insertEvent(t, f.pool, "invoice.paid")

	other, err := f.pool.Begin(ctx) // another replica's fan-out, holding the cursor
	require.NoError(t, err)
	_, err = other.Exec(ctx, `SELECT seq FROM notify_cursor WHERE name = 'webhooks' FOR UPDATE`)
	require.NoError(t, err)
	res := f.fanOut(t)
	require.True(t, res.Busy)
	require.Zero(t, res.Events)
	require.NoError(t, other.Rollback(ctx))

	var wg sync.WaitGroup
	var events atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := f.svc.FanOut(ctx)
			assert(t, err == nil, "fan-out: %v", err)
			events.Add(int64(res.Events))
		}()
	}
	wg.Wait()
	require.EqualValues(t, 1, events.Load(), "the event is passed once")
	require.Len(t, f.deliveredEvents(t), 1)
}

func assert(t *testing.T, ok bool, format string, args ...any) {
	if !ok {
		t.Errorf(format, args...)
	}
}

func TestDeliveryRetriesOnBackoffThenSucceeds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	wall := clock.NewFixed(time.Now())
	f := newFixture(t, notify.Tuning{BackoffBase: time.Minute, BackoffMax: time.Hour}, wall)
	rcv := newReceiver(t, 500, 503, 204)
	ep := f.endpoint(t, rcv.URL+"/hooks", "invoice.paid")
	paid := insertEvent(t, f.pool, "invoice.paid")
	insertEvent(t, f.pool, "payment.failed") // not subscribed

	require.Equal(t, 1, f.fanOut(t).Deliveries)
	tickets := f.q.take()
	require.Equal(t, []notify.Ticket{{DeliveryID: tickets[0].DeliveryID, Attempt: 1}}, tickets)
	id := tickets[0].DeliveryID

	t0 := wall.Now()
	res, err := f.svc.Deliver(ctx, id, 1)
	require.NoError(t, err)
	require.Equal(t, notify.DeliveryResult{Sent: true, Status: notify.DeliveryPending, HTTPStatus: 500}, res)
	res, err = f.svc.Deliver(ctx, id, 1)
	require.NoError(t, err)
	require.False(t, res.Sent, "a duplicate ticket for a made attempt sends nothing")

	d := onlyDelivery(t, f, ep.ID)
	require.Equal(t, 1, d.Attempts)
	require.Equal(t, 500, *d.LastStatus)
	require.Contains(t, *d.LastError, "HTTP 500: status Internal Server Error")
	require.Equal(t, t0.Add(time.Minute).UnixMicro(), d.NextAttemptAt.UnixMicro(), "the first retry waits the base")

	wall.Advance(time.Minute - time.Second)
	require.Zero(t, f.fanOut(t).Retries, "not due before the backoff")
	wall.Advance(time.Second)
	require.Equal(t, 1, f.fanOut(t).Retries)
	require.Equal(t, []notify.Ticket{{DeliveryID: id, Attempt: 2}}, f.q.take())
	_, err = f.svc.Deliver(ctx, id, 2)
	require.NoError(t, err)
	d = onlyDelivery(t, f, ep.ID)
	require.Equal(t, 503, *d.LastStatus)
	require.Equal(t, wall.Now().Add(2*time.Minute).UnixMicro(), d.NextAttemptAt.UnixMicro(), "the second retry waits twice as long")

	wall.Advance(2 * time.Minute)
	require.Equal(t, 1, f.fanOut(t).Retries)
	require.Equal(t, []notify.Ticket{{DeliveryID: id, Attempt: 3}}, f.q.take())
	_, err = f.svc.Deliver(ctx, id, 3)
	require.NoError(t, err)

	d = onlyDelivery(t, f, ep.ID)
	require.Equal(t, notify.DeliveryDelivered, d.Status)
	require.Equal(t, 3, d.Attempts)
	require.Equal(t, 204, *d.LastStatus)
	require.Nil(t, d.NextAttemptAt)
	require.Nil(t, d.LastError)
	require.Equal(t, wall.Now().UnixMicro(), d.DeliveredAt.UnixMicro())
	require.Equal(t, "invoice.paid", d.EventType)
	wall.Advance(time.Hour)
	require.Zero(t, f.fanOut(t).Retries)

	reqs := rcv.requests()
	require.Len(t, reqs, 3)
	sentAt := []time.Time{t0, t0.Add(time.Minute), t0.Add(3 * time.Minute)}
	for i, r := range reqs {
		require.NoError(t, notify.Verify(ep.Secret, r.header.Get("Billing-Signature"), r.body, sentAt[i], time.Second), "request %d", i)
		require.Equal(t, paid, r.header.Get("Billing-Event-Id"))
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		require.Equal(t, []string{"1", "2", "3"}[i], r.header.Get("Billing-Delivery-Attempt"))
		require.Equal(t, string(reqs[0].body), string(r.body), "every attempt sends the same event")
	}
	require.ErrorIs(t, notify.Verify(ep.Secret, reqs[0].header.Get("Billing-Signature"), reqs[0].body, wall.Now(), time.Minute),
		notify.ErrSignature, "signed on the wall clock at the first attempt: stale an hour later")

	var body map[string]any
	require.NoError(t, json.Unmarshal(reqs[0].body, &body))
	require.Equal(t, paid, body["id"])
	require.Equal(t, "invoice.paid", body["type"])
	require.Equal(t, map[string]any{"n": 1.0}, body["data"])
	for _, k := range []string{"created_at", "customer_id", "subscription_id", "invoice_id", "attempt_id"} {
		require.Contains(t, body, k)
	}
	require.Equal(t, 1.0, counter(t, f.reg, "billing_webhook_deliveries_total", "outcome", "delivered"))
	require.Equal(t, 2.0, counter(t, f.reg, "billing_webhook_deliveries_total", "outcome", "retrying"))
}

func onlyDelivery(t *testing.T, f *fixture, endpointID string) notify.Delivery {
	t.Helper()
	l, err := f.svc.ListDeliveries(context.Background(), endpointID, page.Request{Limit: 10})
	require.NoError(t, err)
	require.Len(t, l.Data, 1)
	return l.Data[0]
}

func TestDeliveryGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, notify.Tuning{BackoffBase: time.Millisecond, MaxAttempts: 2})
	rcv := newReceiver(t, 500)
	ep := f.endpoint(t, rcv.URL, "*")
	insertEvent(t, f.pool, "invoice.paid")
	f.fanOut(t)
	id := f.q.take()[0].DeliveryID

	_, err := f.svc.Deliver(ctx, id, 1)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return f.fanOut(t).Retries == 1 }, 5*time.Second, 5*time.Millisecond)
	res, err := f.svc.Deliver(ctx, id, 2)
	require.NoError(t, err)
	require.Equal(t, notify.DeliveryFailed, res.Status)

	d := onlyDelivery(t, f, ep.ID)
	require.Equal(t, notify.DeliveryFailed, d.Status)
	require.Equal(t, 2, d.Attempts)
	require.Nil(t, d.NextAttemptAt)
	require.NotContains(t, *d.LastError, "\x00")
	time.Sleep(5 * time.Millisecond)
	require.Zero(t, f.fanOut(t).Retries)
	require.Len(t, rcv.requests(), 2)
	require.Equal(t, 1.0, counter(t, f.reg, "billing_webhook_deliveries_total", "outcome", "failed"))
}

func TestUnreachableEndpointIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, notify.Tuning{Timeout: 100 * time.Millisecond})
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	t.Cleanup(func() { close(hang); slow.Close() })
	ep := f.endpoint(t, slow.URL, "*")
	insertEvent(t, f.pool, "invoice.paid")
	f.fanOut(t)

	start := time.Now()
	res, err := f.svc.Deliver(ctx, f.q.take()[0].DeliveryID, 1)
	require.NoError(t, err)
	require.Less(t, time.Since(start), 2*time.Second, "the request timeout applies")
	require.Equal(t, notify.DeliveryPending, res.Status)
	d := onlyDelivery(t, f, ep.ID)
	require.Nil(t, d.LastStatus, "no answer, no status")
	require.Equal(t, "no answer within 100ms", *d.LastError)
}

func TestDeletedEndpointGetsNothingMore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, notify.Tuning{})
	rcv := newReceiver(t, 200)
	ep := f.endpoint(t, rcv.URL, "*")
	insertEvent(t, f.pool, "invoice.paid")
	f.fanOut(t)
	ticket := f.q.take()[0]

	gone, err := f.svc.DeleteEndpoint(ctx, ep.ID)
	require.NoError(t, err)
	require.Equal(t, notify.EndpointDeleted, gone.Status)
	require.NotNil(t, gone.DeletedAt)
	again, err := f.svc.DeleteEndpoint(ctx, ep.ID)
	require.NoError(t, err, "deleting twice is fine")
	require.Equal(t, gone.DeletedAt.UnixMicro(), again.DeletedAt.UnixMicro())

	res, err := f.svc.Deliver(ctx, ticket.DeliveryID, ticket.Attempt)
	require.NoError(t, err)
	require.False(t, res.Sent)
	d := onlyDelivery(t, f, ep.ID)
	require.Equal(t, notify.DeliveryFailed, d.Status)
	require.Equal(t, "endpoint deleted", *d.LastError)

	insertEvent(t, f.pool, "invoice.paid")
	require.Zero(t, f.fanOut(t).Deliveries)
	require.Empty(t, rcv.requests())
	l, err := f.svc.ListEndpoints(ctx, page.Request{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, l.Data)
	_, err = f.svc.DeleteEndpoint(ctx, "we_missing")
	require.True(t, apperr.IsKind(err, apperr.KindNotFound))
}

func TestEndpointsSeeOnlyEventsAfterTheirRegistration(t *testing.T) {
	t.Parallel()
	f := newFixture(t, notify.Tuning{})
	insertEvent(t, f.pool, "invoice.paid")
	f.endpoint(t, "http://127.0.0.1:9/hook", "*")
	after := insertEvent(t, f.pool, "invoice.paid")
	require.Equal(t, 2, f.fanOut(t).Events)
	require.Equal(t, []string{after}, f.deliveredEvents(t))
}

func TestRotateSecretsKeepsTheSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, notify.Tuning{})
	rcv := newReceiver(t, 200)
	ep := f.endpoint(t, rcv.URL, "*")

	// A new key version joins the ring: rotation moves the secret under it, and deliveries still sign
	// with the same secret.
	keys := newKeys(2)
	keys[1] = f.keys[1]
	svc := notify.New(notify.Config{Pool: f.pool, KeyRing: newRing(t, keys), Registry: prometheus.NewRegistry(), Log: quiet, AllowPrivateNetworks: true})
	svc.SetEnqueuer(f.q)
	n, err := svc.RotateSecrets(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	var version int
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT secret_key_version FROM webhook_endpoints WHERE id = $1`, ep.ID).Scan(&version))
	require.Equal(t, 2, version)
	n, err = svc.RotateSecrets(ctx, 1)
	require.NoError(t, err)
	require.Zero(t, n)

	insertEvent(t, f.pool, "invoice.paid")
	_, err = svc.FanOut(ctx)
	require.NoError(t, err)
	_, err = svc.Deliver(ctx, f.q.take()[0].DeliveryID, 1)
	require.NoError(t, err)
	r := rcv.requests()
	require.Len(t, r, 1)
	require.NoError(t, notify.Verify(ep.Secret, r[0].header.Get("Billing-Signature"), r[0].body, time.Now(), time.Minute))
}

func TestEndpointValidation(t *testing.T) {
	t.Parallel()
	svc := notify.New(notify.Config{Log: quiet}) // validation refuses before anything touches the database
	for name, c := range map[string]struct {
		url    string
		events []string
		field  string
	}{
		"no url":          {"", []string{"*"}, "url"},
		"relative":        {"/hooks", []string{"*"}, "url"},
		"ftp":             {"ftp://example.com/x", []string{"*"}, "url"},
		"no host":         {"http:///x", []string{"*"}, "url"},
		"credentials":     {"https://user:pw@example.com/x", []string{"*"}, "url"},
		"fragment":        {"https://example.com/x#frag", []string{"*"}, "url"},
		"too long":        {"https://example.com/" + strings.Repeat("a", 2048), []string{"*"}, "url"},
		"not a url":       {"https://exa mple.com", []string{"*"}, "url"},
		"no events":       {"https://example.com/x", nil, "events"},
		"unknown event":   {"https://example.com/x", []string{"invoice.paid", "invoice.exploded"}, "events[1]"},
		"wrong case":      {"https://example.com/x", []string{"Invoice.Paid"}, "events[0]"},
		"wildcard prefix": {"https://example.com/x", []string{"invoice.*"}, "events[0]"},
		// Production refuses the service's own networks (server-side request forgery).
		"loopback":       {"http://127.0.0.1:8080/x", []string{"*"}, "url"},
		"localhost":      {"http://localhost:8080/x", []string{"*"}, "url"},
		"sub.localhost":  {"http://app.localhost/x", []string{"*"}, "url"},
		"metadata":       {"http://169.254.169.254/latest/meta-data", []string{"*"}, "url"},
		"private":        {"https://10.1.2.3/x", []string{"*"}, "url"},
		"private 172":    {"https://172.20.0.5/x", []string{"*"}, "url"},
		"cgnat":          {"https://100.64.1.1/x", []string{"*"}, "url"},
		"unspecified":    {"http://0.0.0.0/x", []string{"*"}, "url"},
		"ipv6 loopback":  {"http://[::1]/x", []string{"*"}, "url"},
		"ipv6 unique":    {"http://[fd00::1]/x", []string{"*"}, "url"},
		"ipv4 in ipv6":   {"http://[::ffff:127.0.0.1]/x", []string{"*"}, "url"},
		"ipv6 linklocal": {"http://[fe80::1]/x", []string{"*"}, "url"},
	} {
		_, err := svc.CreateEndpoint(context.Background(), notify.NewEndpoint{URL: c.url, Events: c.events})
		e, ok := apperr.As(err)
		require.True(t, ok, name)
		require.Equal(t, apperr.KindValidation, e.Kind, name)
		require.Equal(t, c.field, e.Fields[0].Field, name)
	}
}

// The refusal also holds when a public-looking name resolves to a private address at send time (DNS
// rebinding): the check runs on the address actually dialed. Here an endpoint registered where private
// networks were allowed is delivered by a production sender: the receiver hears nothing, and the attempt
// fails with the reason.
func TestProductionSenderRefusesPrivateAddressesWhenDialing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, notify.Tuning{MaxAttempts: 1})
	rcv := newReceiver(t, 200)
	ep := f.endpoint(t, rcv.URL, "*")
	insertEvent(t, f.pool, "invoice.paid")
	f.fanOut(t)
	id := f.q.take()[0].DeliveryID

	prod := notify.New(notify.Config{Pool: f.pool, KeyRing: newRing(t, f.keys), Registry: prometheus.NewRegistry(), Log: quiet,
		Tuning: notify.Tuning{MaxAttempts: 1}})
	res, err := prod.Deliver(ctx, id, 1)
	require.NoError(t, err)
	require.Equal(t, notify.DeliveryFailed, res.Status)
	require.Empty(t, rcv.requests(), "nothing reached the private address")
	d := onlyDelivery(t, f, ep.ID)
	require.Contains(t, *d.LastError, "destination address is not public")

	_, err = prod.CreateEndpoint(ctx, notify.NewEndpoint{URL: "https://hooks.example.com/billing", Events: []string{"*"}})
	require.NoError(t, err, "a public name is accepted at creation; its address is checked at every dial")
}

// A failed delivery can be re-sent once the receiver is fixed: one more attempt now, counted on. Only a
// failed delivery can; a delivered or pending one is a 409 naming its state.
func TestResendAFailedDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, notify.Tuning{MaxAttempts: 1})
	rcv := newReceiver(t, 500, 200)
	ep := f.endpoint(t, rcv.URL, "*")
	insertEvent(t, f.pool, "invoice.paid")
	f.fanOut(t)
	id := f.q.take()[0].DeliveryID
	res, err := f.svc.Deliver(ctx, id, 1)
	require.NoError(t, err)
	require.Equal(t, notify.DeliveryFailed, res.Status)
	d := onlyDelivery(t, f, ep.ID)

	again, err := f.svc.Resend(ctx, ep.ID, d.ID)
	require.NoError(t, err)
	require.Equal(t, notify.DeliveryPending, again.Status)
	require.Equal(t, 1, again.Attempts)
	tickets := f.q.take()
	require.Len(t, tickets, 1)
	require.Equal(t, notify.Ticket{DeliveryID: id, Attempt: 2}, tickets[0])
	res, err = f.svc.Deliver(ctx, id, 2)
	require.NoError(t, err)
	require.Equal(t, notify.DeliveryDelivered, res.Status)
	require.Len(t, rcv.requests(), 2)

	_, err = f.svc.Resend(ctx, ep.ID, d.ID)
	e, ok := apperr.As(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, apperr.KindConflict, e.Kind)
	require.Equal(t, "delivered", e.Extra["state"])
	_, err = f.svc.Resend(ctx, ep.ID, "999999")
	e, ok = apperr.As(err)
	require.True(t, ok)
	require.Equal(t, apperr.KindNotFound, e.Kind)
	_, err = f.svc.Resend(ctx, "whep_nope", d.ID)
	e, ok = apperr.As(err)
	require.True(t, ok)
	require.Equal(t, apperr.KindNotFound, e.Kind)
}
