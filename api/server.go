package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/billingkey"
	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/notify"
	"github.com/dunningworks/billing/reconcile"
)

// ClockAdvancer moves the test clock and enqueues the work that falls due on the way.
type ClockAdvancer interface {
	Advance(ctx context.Context, to time.Time) (time.Time, error)
}

// Deps is what the HTTP layer needs; cmd/billingd wires it.
type Deps struct {
	Pool     *pgxpool.Pool
	Log      *slog.Logger
	Clock    clock.Clock
	Registry *prometheus.Registry
	// Bootstrap tokens (role, token) accepted besides the hashed keys in the database.
	Bootstrap []BootstrapToken
	// Ready reports whether the service can take traffic (DB reachable, migrations current).
	Ready func(ctx context.Context) error
	// TestClock is nil unless BILLING_TEST_CLOCK=1.
	TestClock     *clock.TestClock
	ClockAdvancer ClockAdvancer
	// Billing is the billing domain service.
	Billing *billing.Service
	// Vault is the billing-key vault.
	Vault *billingkey.Vault
	// Notify owns outgoing webhook endpoints and their deliveries.
	Notify *notify.Service
	// Gateways are the enabled gateways; POST /webhooks/{gateway} answers only for these.
	Gateways billing.Gateways
	// Reconcile serves reconciliation findings to support.
	Reconcile *reconcile.Service
	// HealthOnly serves only /healthz, /readyz and /metrics (BILLING_ROLE=worker).
	HealthOnly bool
	// RateLimit is the requests per second allowed per API token (BILLING_API_RATE); 0 means no limit.
	RateLimit float64
	// WebhookRate is the webhooks per second allowed per sending address on POST /webhooks/{gateway}
	// (BILLING_WEBHOOK_RATE); 0 means no limit.
	WebhookRate float64
	// TrustedProxies are the proxies whose X-Forwarded-For names a webhook's sender
	// (BILLING_TRUSTED_PROXIES); without them the peer's address is the sender.
	TrustedProxies []netip.Prefix
	// Console builds the support console served at /console (nil: no console).
	Console ConsoleFactory
	// Portal serves the customer's page behind a signed link at /c (nil: none).
	Portal http.Handler
}

// BootstrapToken is a configured token and its role.
type BootstrapToken struct {
	Role  string
	Token string
}

// Server is the REST API.
type Server struct {
	Deps
	pool      *pgxpool.Pool
	log       *slog.Logger
	bootstrap []bootstrapToken
	metrics   httpMetrics
	router    chi.Router
	limiter   *rateLimiter
	// webhookLimiter keeps a bucket per webhook sender's address.
	webhookLimiter *rateLimiter
	idemLock       time.Duration
	// tracksWrites: the pool tells which requests sent a write (dbx.WriteTracer), so a failed request
	// that sent none keeps no answer under its Idempotency-Key.
	tracksWrites bool
}

// New builds the API's router.
func New(d Deps) *Server {
	s := &Server{Deps: d, pool: d.Pool, log: d.Log}
	if s.log == nil {
		s.log = slog.Default()
	}
	if d.Registry == nil {
		s.Registry = prometheus.NewRegistry()
	}
	for _, b := range d.Bootstrap {
		s.bootstrap = append(s.bootstrap, bootstrapToken{role: b.Role, hash: HashToken(b.Token)})
	}
	s.metrics = newHTTPMetrics(s.Registry)
	s.limiter = newRateLimiter(d.RateLimit, time.Now)
	s.webhookLimiter = newRateLimiter(d.WebhookRate, time.Now)
	s.idemLock = defaultIdempotencyLock
	s.tracksWrites = dbx.Traces(d.Pool)

	r := chi.NewRouter()
	r.Use(requestID, s.accessLog, recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, Problem{Status: http.StatusNotFound, Code: "route_not_found", Detail: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	r.MethodNotAllowed(s.methodNotAllowed)
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.readyz)
	r.Handle("/metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	r.Get("/openapi.json", serveOpenAPI)

	if !d.HealthOnly {
		s.mountInboundWebhooks(r) // gateways carry no bearer token: outside the authenticated group
		r.Group(func(r chi.Router) {
			// Order matters: keys and buckets are per token, a rate-limited request never claims an
			// idempotency key, and a replay is answered before any handler runs.
			r.Use(limitBody, s.authenticate, refuseUnreadableText, s.rateLimit, s.idempotency)
			s.mountV1(r)
		})
		if d.Console != nil {
			// People sign in with a form and a session cookie, not a bearer header: outside the auth group.
			r.Mount("/console", d.Console(ConsoleAuth{Lookup: s.lookupToken, KeyActive: s.keyActive}))
		}
		if d.Portal != nil {
			// The signed link is the credential: no bearer token, outside the auth group.
			r.Mount("/c", d.Portal)
		}
	}
	s.router = r
	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Router exposes the routes, so tests can walk them (the OpenAPI coverage test does).
func (s *Server) Router() chi.Router { return s.router }

// mountV1 registers the authenticated API. One line per area; the handlers live in one file per endpoint.
func (s *Server) mountV1(r chi.Router) {
	s.mountTestClock(r)
	s.mountCustomers(r)
	s.mountPlans(r)
	s.mountTaxRates(r)
	s.mountCustomerCredit(r)
	s.mountCoupons(r)
	s.mountSubscriptions(r)
	s.mountSubscriptionLifecycle(r)
	s.mountInvoices(r)
	s.mountRefunds(r)
	s.mountLedger(r)
	s.mountBillingKeys(r)
	s.mountBackupKeys(r)
	s.mountWebhookEndpoints(r)
	s.mountSupport(r)
	s.mountSupportDunning(r)
	s.mountAudit(r)
	s.mountReconciliation(r)
	s.mountAPIKeys(r)
	s.mountAnalytics(r)
	s.mountExports(r)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			// Ready's errors are written for outsiders ("database unavailable", "shutting down", "not
			// migrated"); the driver's details are in the log.
			w.Header().Set("Retry-After", strconv.Itoa(unavailableRetryAfter))
			writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Code: "not_ready", Detail: err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
