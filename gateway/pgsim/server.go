package pgsim

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a Server.
type Options struct {
	// Seed makes fault draws and generated keys reproducible.
	Seed int64
	// SecretKey is the only secret accepted in Basic auth. Empty accepts any (but still requires the header).
	SecretKey string
	// WebhookURL, when set, receives PAYMENT_STATUS_CHANGED events for every status change.
	WebhookURL string
	// Clock is the simulator's "now" for approvedAt, transaction times and outage windows. Nil is the wall
	// clock. Delays (latency, processing, webhook delays) always use real time.
	Clock func() time.Time
	// Logger receives control-plane changes (info) and one line per API request (debug). Nil discards.
	Logger *slog.Logger
	// WebhookClient posts webhooks. Nil is a client with a 2 s timeout.
	WebhookClient *http.Client
	// ClientKey is the only client key the card-registration SDK accepts (default DefaultClientKey).
	ClientKey string
}

// Server is the simulator: an http.Handler serving the Toss v1 API and the /__sim/ control API.
type Server struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	mux    *http.ServeMux
	hooks  *webhooks
	secret string

	mu        sync.Mutex
	rng       *rand.Rand
	gen       uint64 // bumped by Reset so late async commits of a previous generation are dropped
	keys      map[string]*BillingKey
	deleted   map[string]DeletedKey    // billing key -> when and for whom it was deleted
	issued    map[string]string        // customerKey + "\x00" + authKey -> billing key
	auths     map[string]*registration // authKeys handed out by the registration page
	byOrder   map[string]*charge
	byPayment map[string]*charge
	failed    map[string]*charge // orderId -> latest ABORTED attempt
	lookups   map[string]int     // orderId -> payment lookups answered (by order or by payment key)
	ordered   []*charge          // committed charges in commit order
	txns      []*txn
	idem      map[string]*idemEntry
	faults    Faults
}

type idemEntry struct {
	hash    [32]byte
	pending bool
	status  int
	body    []byte
	header  http.Header
}

// New returns a simulator. Call Close to stop webhook deliveries and pending timers.
func New(opts Options) *Server {
	s := &Server{opts: opts, secret: opts.SecretKey}
	s.log = opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.now = opts.Clock
	if s.now == nil {
		s.now = func() time.Time { return time.Now().UTC() }
	}
	s.resetLocked()
	s.hooks = newWebhooks(opts.WebhookClient, s.log)
	s.routes()
	return s
}

func (s *Server) resetLocked() {
	seed := uint64(s.opts.Seed)
	s.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s.gen++
	s.keys = map[string]*BillingKey{}
	s.deleted = map[string]DeletedKey{}
	s.issued = map[string]string{}
	s.auths = map[string]*registration{}
	s.byOrder = map[string]*charge{}
	s.byPayment = map[string]*charge{}
	s.failed = map[string]*charge{}
	s.lookups = map[string]int{}
	s.ordered = nil
	s.txns = nil
	s.idem = map[string]*idemEntry{}
	s.faults = Faults{}
}

// ServeHTTP serves the Toss API and the control API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close stops webhook deliveries (in flight and scheduled) and waits for them to end.
func (s *Server) Close() { s.hooks.close() }

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /v1/billing/authorizations/issue", s.api(s.handleIssue))
	m.HandleFunc("POST /v1/billing/{billingKey}", s.api(s.handleCharge))
	m.HandleFunc("DELETE /v1/billing/{billingKey}", s.api(s.handleDeleteKey))
	m.HandleFunc("GET /v1/payments/orders/{orderId}", s.api(s.handleLookupOrder))
	m.HandleFunc("GET /v1/payments/{paymentKey}", s.api(s.handleLookupPayment))
	m.HandleFunc("POST /v1/payments/{paymentKey}/cancel", s.api(s.handleCancel))
	m.HandleFunc("GET /v1/transactions", s.api(s.handleTransactions))

	// Card registration (register.go): the SDK stand-in and the billing-auth window.
	m.HandleFunc("GET /js/v1/payment", s.handleSDK)
	m.HandleFunc("GET /billing-auth", s.handleAuthPage)
	m.HandleFunc("POST /billing-auth", s.handleAuthSubmit)

	m.HandleFunc("GET /__sim/charges", s.ctlListCharges)
	m.HandleFunc("GET /__sim/charges/{orderId}", s.ctlGetCharge)
	m.HandleFunc("POST /__sim/charges/{orderId}/plant", s.ctlPlant)
	m.HandleFunc("GET /__sim/billing-keys", s.ctlListKeys)
	m.HandleFunc("POST /__sim/billing-keys/{billingKey}/behavior", s.ctlKeyBehavior)
	m.HandleFunc("POST /__sim/billing-keys/{billingKey}/faults", s.ctlKeyFaults)
	m.HandleFunc("POST /__sim/customers/{customerKey}/behavior", s.ctlCustomerBehavior)
	m.HandleFunc("GET /__sim/faults", s.ctlGetFaults)
	m.HandleFunc("POST /__sim/faults", s.ctlSetFaults)
	m.HandleFunc("DELETE /__sim/faults", s.ctlClearFaults)
	m.HandleFunc("GET /__sim/webhooks", s.ctlWebhooks)
	m.HandleFunc("POST /__sim/reset", s.ctlReset)
	s.mux = m
}

// tossError is Toss's error object.
type tossError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// api wraps a Toss API handler with auth, outage, gateway-wide rate limiting and latency.
func (s *Server) api(h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.log.Debug("pgsim request", "method", r.Method, "path", r.URL.Path)
		if !s.authorized(r) {
			writeError(w, http.StatusUnauthorized, "UNAUTHORIZED_KEY", "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.")
			return
		}
		if !s.preamble(w, r, r.PathValue("billingKey")) {
			return
		}
		h(w, r)
	}
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	enc, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return false
	}
	user, _, ok := strings.Cut(string(raw), ":")
	if !ok {
		return false
	}
	return s.secret == "" || subtle.ConstantTimeCompare([]byte(user), []byte(s.secret)) == 1
}

// preamble applies outage, 429 and latency, gateway-wide and (for charges) those of billing key bk.
// It reports whether the request goes on.
func (s *Server) preamble(w http.ResponseWriter, r *http.Request, bk string) bool {
	s.mu.Lock()
	key := s.faults.keyRules(bk)
	if o := s.faults.Outage; o != nil && (o.Until.IsZero() || s.now().Before(o.Until)) {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "FAILED_INTERNAL_SYSTEM_PROCESSING", "simulated outage")
		return false
	}
	var limited *RateLimitFault
	for _, f := range []*RateLimitFault{key.RateLimit429, s.faults.RateLimit429} {
		if f != nil && f.fire(s.rng) {
			limited = f
			break
		}
	}
	var delay time.Duration
	for _, f := range []*LatencyFault{key.Latency, s.faults.Latency} {
		if limited == nil && f != nil && f.fire(s.rng) {
			delay += time.Duration(f.Ms) * time.Millisecond
		}
	}
	s.mu.Unlock()
	if limited != nil {
		ra := limited.RetryAfterSeconds
		if ra <= 0 {
			ra = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(ra))
		writeError(w, http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "simulated rate limit")
		return false
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, tossError{Code: code, Message: msg})
}

func errorBody(code, msg string) []byte {
	b, _ := json.Marshal(tossError{Code: code, Message: msg})
	return b
}

// readBody reads a small JSON request body fully, so the connection can be hijacked cleanly later.
func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, 1<<20))
}
