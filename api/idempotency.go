package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/idem"
	"github.com/dunningworks/billing/internal/store"
)

// Idempotency keys (API.md, docs/idempotency.md). A POST with an Idempotency-Key runs at most once per
// (token, method, path, key): the first request claims the key in Postgres and its answer is stored;
// a replay gets that answer back with Idempotent-Replayed: true.
const (
	// IdempotencyHeader is the request header that carries the key.
	IdempotencyHeader = "Idempotency-Key"
	// ReplayedHeader marks an answer that was stored, not computed now.
	ReplayedHeader = "Idempotent-Replayed"
	// IdempotencyRetention is how long a key is kept; the reaper deletes older ones.
	IdempotencyRetention = idem.Retention

	maxIdempotencyKey = 255
)

// defaultIdempotencyLock is how long a claim stays valid without a heartbeat. The request that owns a
// key extends it every third of that while its handler runs, so an expired lock means the owner died (the
// process was killed, or lost its database) — never that it was merely slow.
const defaultIdempotencyLock = 30 * time.Second

// rerunSafe are the POST routes whose handler can run a second time after a first run that took effect
// without making a second effect: creations guarded by a unique natural key (a re-run answers 409),
// state-guarded changes (a re-run is refused by the state machine or changes nothing), and the creations
// that record the key with their effect (a re-run finds what the first run made). Only for these is a key
// released after a 5xx or taken over after its owner died; every other route keeps the first outcome,
// whatever it was. A new route is unsafe until it is listed here.
var rerunSafe = map[string]bool{
	"/v1/customers": true, // external_id is unique
	"/v1/plans":     true, // code is unique
	// The key is recorded with the subscription in its creation's transaction; a re-run answers with
	// that subscription (billing.NewSubscription.Idempotency).
	"/v1/subscriptions": true,
	// Likewise recorded with the stored key (billingkey.Vault.Issue); the gateway's own issue call is
	// idempotent on (customer key, auth key).
	"/v1/customers/{id}/billing-keys": true,
	// Likewise recorded with the credit note (billing.RefundRequest.Idempotency); a re-run answers with it
	// and settles its refund by lookup (a resend reuses the refund's gateway idempotency key).
	"/v1/invoices/{id}/refunds":                                  true,
	"/v1/customers/{id}/billing-keys/{key_id}/default":           true,
	"/v1/subscriptions/{id}/cancel":                              true,
	"/v1/subscriptions/{id}/resume-cancel":                       true,
	"/v1/subscriptions/{id}/pause":                               true,
	"/v1/subscriptions/{id}/resume":                              true,
	"/v1/support/invoices/{id}/retry":                            true, // a paid invoice is never charged again
	"/v1/support/invoices/{id}/mark-paid":                        true,
	"/v1/support/invoices/{id}/void":                             true,
	"/v1/support/invoices/{id}/write-off":                        true,
	"/v1/support/subscriptions/{id}/extend-grace":                true,
	"/v1/support/subscriptions/{id}/pause-dunning":               true,
	"/v1/support/subscriptions/{id}/resume-dunning":              true,
	"/v1/webhook-endpoints/{id}/deliveries/{delivery_id}/resend": true, // only a failed delivery is re-sent
}

// replayedHeaders are the response headers stored with an answer and sent again on a replay.
var replayedHeaders = []string{"Content-Type", "ETag", "Location", "Retry-After"}

type idemKey struct {
	params store.GetIdempotencyKeyParams
	hash   []byte
	safe   bool
}

// domainRequest is the key as a domain call records it with its effect (internal/idem): the request's
// identity — a SHA-256 of scope, method, path and key, the same for every retry — and its content hash.
func (k idemKey) domainRequest() idem.Request {
	h := sha256.New()
	for _, part := range []string{k.params.Scope, k.params.Method, k.params.Path, k.params.Key} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return idem.Request{Identity: h.Sum(nil), Hash: k.hash}
}

type idemRequestKey struct{}

// idempotencyOf is the request's Idempotency-Key for a domain call, or the zero idem.Request without one.
func idempotencyOf(r *http.Request) idem.Request {
	v, _ := r.Context().Value(idemRequestKey{}).(idem.Request)
	return v
}

func (k idemKey) claimParams(until, now time.Time) store.ClaimIdempotencyKeyParams {
	return store.ClaimIdempotencyKeyParams{Scope: k.params.Scope, Method: k.params.Method, Path: k.params.Path,
		Key: k.params.Key, RequestHash: k.hash, LockedUntil: &until, CreatedAt: now}
}

// lockUntil is a claim's lock expiry, at the database's precision (microseconds), so the value a request
// remembers is the one stored and a release can be made conditional on it.
func lockUntil(now time.Time, lock time.Duration) time.Time {
	return now.Add(lock).Truncate(time.Microsecond)
}

// claim is a key this request holds; until is its lock as last written (the heartbeat moves it).
type claim struct {
	key   idemKey
	mu    sync.Mutex
	until time.Time
}

func (c *claim) lockedUntil() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.until
}

// idempotency is the middleware of every authenticated POST. It must run after authenticate (keys are
// scoped per token) and before the handler; chi resolves the route before a group's middlewares run, so
// the route pattern is known here.
func (s *Server) idempotency(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(IdempotencyHeader)
		if r.Method != http.MethodPost || key == "" {
			next.ServeHTTP(w, r)
			return
		}
		if n := utf8.RuneCountInString(key); n > maxIdempotencyKey || !utf8.ValidString(key) {
			writeError(w, r, &apperr.Error{Kind: apperr.KindValidation, Code: "idempotency_key_invalid",
				Message: "Idempotency-Key must be 1 to 255 characters of UTF-8",
				Fields:  []apperr.FieldError{{Field: IdempotencyHeader, Message: "must be 1 to 255 characters"}}})
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, r, decodeError(err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		p, _ := PrincipalFrom(r.Context())
		route := chi.RouteContext(r.Context()).RoutePattern()
		k := idemKey{
			params: store.GetIdempotencyKeyParams{Scope: p.Scope, Method: r.Method, Path: r.URL.Path, Key: key},
			hash:   requestHash(r.URL.RawQuery, body),
			safe:   rerunSafe[route],
		}
		q := store.New(s.pool)
		for range 3 {
			now := time.Now().UTC()
			until := lockUntil(now, s.idemLock)
			claimed, err := q.ClaimIdempotencyKey(r.Context(), k.claimParams(until, now))
			if err != nil {
				writeError(w, r, idempotencyUnavailable(err))
				return
			}
			if claimed == 1 {
				s.runOwned(w, r, next, &claim{key: k, until: until})
				return
			}
			row, err := q.GetIdempotencyKey(r.Context(), k.params)
			if errors.Is(err, pgx.ErrNoRows) {
				continue // released (a 5xx) or reaped between our claim and our read: claim again
			}
			if err != nil {
				writeError(w, r, idempotencyUnavailable(err))
				return
			}
			switch {
			case !bytes.Equal(row.RequestHash, k.hash):
				writeError(w, r, idem.ErrReused())
			case row.Status == "completed":
				replay(w, row)
			case row.LockedUntil != nil && row.LockedUntil.After(now):
				writeError(w, r, apperr.Conflict("idempotency_key_in_use",
					"a request with this Idempotency-Key is still running; retry after it answers"))
			case k.safe:
				// The owner died mid-request. Re-running is safe here, and exactly one retry wins the row.
				until := lockUntil(now, s.idemLock)
				n, err := q.TakeOverIdempotencyKey(r.Context(), store.TakeOverIdempotencyKeyParams{Scope: k.params.Scope,
					Method: k.params.Method, Path: k.params.Path, Key: k.params.Key, LockedUntil: &until, Now: &now})
				if err != nil {
					writeError(w, r, idempotencyUnavailable(err))
					return
				}
				if n == 0 {
					continue // another retry took it over (or it completed meanwhile): look again
				}
				s.runOwned(w, r, next, &claim{key: k, until: until})
			default:
				writeError(w, r, &apperr.Error{Kind: apperr.KindConflict, Code: "idempotency_key_interrupted",
					Message: "the first request with this Idempotency-Key was interrupted before it answered, so whether it " +
						"took effect is unknown; look the resource up before retrying with a new key"})
			}
			return
		}
		writeError(w, r, apperr.Conflict("idempotency_key_in_use", "this Idempotency-Key is contended; retry shortly"))
	})
}

// runOwned runs the handler for a key this request holds, keeps the lock alive meanwhile, and stores the
// answer — except after a 5xx on a route that is safe to re-run, or a 5xx of a request that committed
// nothing (a database outage): then the key is released, so a retry performs the request.
func (s *Server) runOwned(w http.ResponseWriter, r *http.Request, next http.Handler, c *claim) {
	k := c.key
	stop := s.heartbeat(r.Context(), c)
	rec := &recorder{ResponseWriter: w}
	ctx, writes := dbx.TrackWrites(r.Context())
	if !s.tracksWrites {
		writes.Assume() // a pool without dbx.WriteTracer cannot tell: assume every failed request wrote
	}
	r = r.WithContext(context.WithValue(ctx, idemRequestKey{}, k.domainRequest()))
	finished := false
	defer func() {
		stop()
		if finished {
			return
		}
		// The handler panicked: the recoverer answers 500 further out. Treat it like any 5xx.
		if k.safe || !writes.Wrote() {
			s.releaseClaim(r, c)
		}
	}()
	next.ServeHTTP(rec, r)
	finished = true
	stop()

	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	if status >= 500 && (k.safe || !writes.Wrote()) {
		s.releaseClaim(r, c)
		return
	}
	if status == http.StatusUnprocessableEntity && problemCode(rec.body.Bytes()) == "idempotency_key_reused" {
		// The domain knows this key under another body (the first request's answer was a released 5xx):
		// the key is that request's, not this one's, so this refusal is not stored under it.
		s.releaseClaim(r, c)
		return
	}
	headers := map[string]string{}
	for _, h := range replayedHeaders {
		if v := rec.Header().Get(h); v != "" {
			headers[h] = v
		}
	}
	rawHeaders, _ := json.Marshal(headers)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	now := time.Now().UTC()
	err := store.New(s.pool).CompleteIdempotencyKey(ctx, store.CompleteIdempotencyKeyParams{
		Scope: k.params.Scope, Method: k.params.Method, Path: k.params.Path, Key: k.params.Key,
		ResponseStatus: ptr(int32(status)), ResponseBody: rec.body.Bytes(), ResponseHeaders: rawHeaders, CompletedAt: &now,
	})
	if err != nil {
		// The client has its answer; the key stays in progress and, once its lock lapses, is treated like
		// a request whose owner died.
		loggerFrom(r).Error("store idempotent response", "err", err, "path", k.params.Path)
	}
}

// heartbeat extends the key's lock until stop is called.
func (s *Server) heartbeat(ctx context.Context, c *claim) (stop func()) {
	k := c.key
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.idemLock / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				until := lockUntil(time.Now().UTC(), s.idemLock)
				if store.New(s.pool).ExtendIdempotencyLock(ctx, store.ExtendIdempotencyLockParams{Scope: k.params.Scope,
					Method: k.params.Method, Path: k.params.Path, Key: k.params.Key, LockedUntil: &until}) == nil {
					c.mu.Lock()
					c.until = until
					c.mu.Unlock()
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// releaseClaim gives the key up so a retry runs the request afresh. When the database is down (the usual
// reason a request that committed nothing failed) the release is retried in the background until it
// succeeds; it is conditional on the lock this request last wrote, so it never drops a claim that a
// retry took over after the lock lapsed.
func (s *Server) releaseClaim(r *http.Request, c *claim) {
	k, until := c.key, c.lockedUntil()
	params := store.ReleaseIdempotencyClaimParams{Scope: k.params.Scope, Method: k.params.Method, Path: k.params.Path,
		Key: k.params.Key, LockedUntil: &until}
	release := func() error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		_, err := store.New(s.pool).ReleaseIdempotencyClaim(ctx, params)
		return err
	}
	err := release()
	if err == nil {
		return
	}
	log := loggerFrom(r)
	log.Warn("release idempotency key; retrying in the background", "err", err, "path", k.params.Path)
	go func() {
		wait := 250 * time.Millisecond
		for deadline := time.Now().Add(releaseRetryFor); time.Now().Before(deadline); {
			time.Sleep(wait)
			if err := release(); err == nil || !dbx.IsUnavailable(err) {
				if err != nil {
					log.Error("release idempotency key", "err", err, "path", k.params.Path)
				}
				return
			}
			wait = min(2*wait, 5*time.Second)
		}
		log.Error("release idempotency key: gave up; the key is released when its lock lapses (safe routes) or answers 409 interrupted", "path", k.params.Path)
	}()
}

// releaseRetryFor bounds the background release of a key after a database outage.
const releaseRetryFor = 10 * time.Minute

func replay(w http.ResponseWriter, row store.GetIdempotencyKeyRow) {
	var headers map[string]string
	_ = json.Unmarshal(row.ResponseHeaders, &headers)
	for k, v := range headers {
		w.Header().Set(k, v)
	}
	w.Header().Set(ReplayedHeader, "true")
	status := http.StatusOK
	if row.ResponseStatus != nil {
		status = int(*row.ResponseStatus)
	}
	w.WriteHeader(status)
	_, _ = w.Write(row.ResponseBody)
}

// requestHash identifies a request's content. JSON bodies are hashed in a canonical form (keys sorted,
// insignificant whitespace dropped), so a client that re-encodes the same request is not refused.
func requestHash(rawQuery string, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(rawQuery))
	h.Write([]byte{0})
	if canon, ok := canonicalJSON(body); ok {
		h.Write([]byte("json\x00"))
		h.Write(canon)
	} else {
		h.Write([]byte("raw\x00"))
		h.Write(body)
	}
	return h.Sum(nil)
}

func canonicalJSON(body []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	out, err := json.Marshal(v)
	return out, err == nil
}

// problemCode reads a problem document's code ("" for any other body).
func problemCode(body []byte) string {
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(body, &p)
	return p.Code
}

func idempotencyUnavailable(err error) error {
	return &apperr.Error{Kind: apperr.KindUnavailable, Code: "service_unavailable",
		Message: "cannot check the Idempotency-Key right now; retry with the same key", Err: err}
}

// recorder passes the answer through and keeps a copy to store.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *recorder) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *recorder) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *recorder) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func ptr[T any](v T) *T { return &v }
