package notify

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/keyring"
	"github.com/dunningworks/billing/internal/store"
)

// Tuning are the knobs of fan-out and delivery. Zero fields take the defaults; tests shrink them.
type Tuning struct {
	// Interval is how often the leader fans out new events and enqueues due retries (default 1s).
	Interval time.Duration
	// BackoffBase is the wait after the first failed attempt; each further failure doubles it (default 30s).
	BackoffBase time.Duration
	// BackoffMax caps the wait between attempts (default 1h).
	BackoffMax time.Duration
	// MaxAttempts is how many times one delivery is tried before it is marked failed (default 16: the
	// last try is about nine hours after the first).
	MaxAttempts int
	// Timeout bounds one HTTP request, connection to last byte (default 5s).
	Timeout time.Duration
	// GapGrace is how long the fan-out waits at a missing seq even when no transaction that could still
	// commit it is left (covers an insert whose transaction had no id yet when the gap was seen; default 2s).
	GapGrace time.Duration
	// GapTimeout is how long the fan-out waits at a missing seq at most, even behind a transaction that is
	// still open: past it the seq is skipped with an error log (default 10m).
	GapTimeout time.Duration
	// Batch is how many events one fan-out transaction reads (default 500).
	Batch int
}

func (t Tuning) withDefaults() Tuning {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Interval, time.Second)
	def(&t.BackoffBase, 30*time.Second)
	def(&t.BackoffMax, time.Hour)
	def(&t.Timeout, 5*time.Second)
	def(&t.GapGrace, 2*time.Second)
	def(&t.GapTimeout, 10*time.Minute)
	if t.MaxAttempts <= 0 {
		t.MaxAttempts = 16
	}
	if t.Batch <= 0 {
		t.Batch = 500
	}
	return t
}

// Backoff is the wait after the attempt-th failed attempt: base, 2·base, 4·base, ... capped at max.
func (t Tuning) Backoff(attempt int) time.Duration {
	t = t.withDefaults()
	d := t.BackoffBase
	for i := 1; i < attempt && d < t.BackoffMax; i++ {
		d *= 2
	}
	return min(d, t.BackoffMax)
}

// Ticket asks for one attempt of one delivery. Attempt is the number the attempt will have (1 for the
// first): a ticket for an attempt already made is a no-op.
type Ticket struct {
	DeliveryID int64
	Attempt    int
}

// Enqueuer puts delivery tickets on the job queue in the caller's transaction (package jobs implements it
// with River). A ticket already waiting or running must not be duplicated.
type Enqueuer interface {
	EnqueueTx(ctx context.Context, tx pgx.Tx, tickets ...Ticket) error
}

// Config is what a Service is built from.
type Config struct {
	Pool *pgxpool.Pool
	// KeyRing seals endpoint secrets; it may be installed later with SetKeyRing.
	KeyRing *keyring.Ring
	// Registry receives the delivery metrics (nil: a private registry).
	Registry prometheus.Registerer
	Log      *slog.Logger
	// Wall is the clock of delivery bookkeeping and signatures (default: the system clock). It is never
	// the test clock: an HTTP retry is not domain time.
	Wall   clock.Clock
	Tuning Tuning
	// Client sends the webhooks (default: a client that follows no redirects, and reaches public
	// addresses only unless AllowPrivateNetworks; Tuning.Timeout applies).
	Client *http.Client
	// AllowPrivateNetworks lets endpoints point at loopback, private and link-local addresses (development:
	// a receiver on the same machine). Production refuses them (destination.go).
	AllowPrivateNetworks bool
}

// Service registers endpoints, fans events out to them and delivers them.
type Service struct {
	pool    *pgxpool.Pool
	ring    *keyring.Ring
	log     *slog.Logger
	wall    clock.Clock
	t       Tuning
	client  *http.Client
	enq     Enqueuer
	metrics metrics
	// allowPrivate: see Config.AllowPrivateNetworks.
	allowPrivate bool
}

// New builds the service. Install an Enqueuer (SetEnqueuer) before fanning out.
func New(c Config) *Service {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Wall == nil {
		c.Wall = clock.System{}
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Client == nil {
		transport := publicOnlyTransport()
		if c.AllowPrivateNetworks {
			transport = http.DefaultTransport.(*http.Transport).Clone()
		}
		c.Client = &http.Client{
			Transport: transport,
			// A redirect is an answer, not a delivery: following it would send the signed event to a URL
			// nobody registered.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Service{pool: c.Pool, ring: c.KeyRing, log: c.Log, wall: c.Wall, t: c.Tuning.withDefaults(),
		client: c.Client, metrics: newMetrics(c.Registry), allowPrivate: c.AllowPrivateNetworks}
}

// SetKeyRing installs the key ring (the vault that owns it is built after the job runner).
func (s *Service) SetKeyRing(r *keyring.Ring) { s.ring = r }

// SetEnqueuer installs the job queue (package jobs builds it after the service exists).
func (s *Service) SetEnqueuer(e Enqueuer) { s.enq = e }

// Interval is how often the fan-out should run.
func (s *Service) Interval() time.Duration { return s.t.Interval }

// Timeout is the per-request timeout of a delivery.
func (s *Service) Timeout() time.Duration { return s.t.Timeout }

var errNoKeyRing = errors.New("notify: no key ring installed")

func (s *Service) q(db dbx.DBTX) *store.Queries { return store.New(db) }

type metrics struct {
	deliveries *prometheus.CounterVec
	duration   prometheus.Histogram
	fannedOut  prometheus.Counter
	gaps       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billing_webhook_deliveries_total",
			Help: "Webhook delivery attempts by outcome: delivered (2xx), retrying (failed, will retry), failed (gave up), abandoned (endpoint deleted).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "billing_webhook_request_duration_seconds", Help: "Time to POST one webhook, answer or error.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		fannedOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "billing_webhook_events_fanned_out_total", Help: "Outbox events the fan-out has passed.",
		}),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billing_webhook_outbox_gaps_skipped_total",
			Help: "Missing outbox sequence numbers skipped: rolled_back (no transaction could still commit it) or timeout (waited GapTimeout).",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.deliveries, m.duration, m.fannedOut, m.gaps)
	for _, o := range []string{outcomeDelivered, outcomeRetrying, outcomeFailed, outcomeAbandoned} {
		m.deliveries.WithLabelValues(o)
	}
	return m
}

const (
	outcomeDelivered = "delivered"
	outcomeRetrying  = "retrying"
	outcomeFailed    = "failed"
	outcomeAbandoned = "abandoned"
)
