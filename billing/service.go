package billing

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/dunning"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/store"
)

// Gateways finds an enabled gateway by name.
type Gateways interface {
	Get(name string) (gateway.Gateway, bool)
}

// WorkKind names a kind of scheduled domain work.
type WorkKind string

const (
	WorkRenew            WorkKind = "renew"             // a subscription's period ends: invoice and charge the next
	WorkCollect          WorkKind = "collect"           // an open invoice's next charge attempt is due
	WorkResolveAttempt   WorkKind = "resolve_attempt"   // an attempt in pending/unknown needs a lookup
	WorkGraceEnd         WorkKind = "grace_end"         // a past_due subscription's grace period is over
	WorkDunningEnd       WorkKind = "dunning_end"       // the dunning window is over: apply the final action
	WorkExpireIncomplete WorkKind = "expire_incomplete" // an incomplete subscription was never paid
	WorkResolveRefund    WorkKind = "resolve_refund"    // a refund in pending/unknown needs a lookup (or its first send)
)

// Work is one unit of due domain work: what, for which entity, and when. The row's column is the truth;
// Work is only the vehicle's ticket.
type Work struct {
	Kind WorkKind
	ID   string    // subscription, invoice or attempt id
	At   time.Time // domain time it is due; (Kind, ID, At) identifies one step of one entity
}

// Scheduler enqueues Work in the caller's transaction (package jobs implements it with River's InsertTx).
type Scheduler interface {
	ScheduleTx(ctx context.Context, tx pgx.Tx, work ...Work) error
}

// WorkCanceler is implemented by a Scheduler that can withdraw queued work (package jobs's does, with
// River's JobCancelTx). It is optional: without it moot work still runs and finds nothing to do.
type WorkCanceler interface {
	// CancelTx withdraws, in tx, the queued (not running) work of the given kinds for entity id.
	CancelTx(ctx context.Context, tx pgx.Tx, id string, kinds ...WorkKind) error
}

// cancelWork withdraws queued work that a state change in tx made moot, if the scheduler can.
func (s *Service) cancelWork(ctx context.Context, tx pgx.Tx, id string, kinds ...WorkKind) error {
	if c, ok := s.sched.(WorkCanceler); ok {
		return c.CancelTx(ctx, tx, id, kinds...)
	}
	return nil
}

// Service is the billing domain.
type Service struct {
	pool     *pgxpool.Pool
	clock    clock.Clock
	gateways Gateways
	vault    KeyVault
	policies *dunning.Policies
	sched    Scheduler
	log      *slog.Logger
	hooks    Hooks
	metrics  chargeMetrics
	prefix   string // document-number prefix (numbers.go)
	// inbox is the pool webhook receipt inserts through (the main pool when none was given), and
	// arrivals wakes the inbox dispatcher when an event was stored.
	inbox    *pgxpool.Pool
	arrivals chan struct{}
	// lookupWindow: a webhook makes us look an order up at most once per window (webhooks.go).
	lookupWindow time.Duration
	// sink receives every event in its transaction (SetEventSink); shared by WithPool's copies.
	sink *atomic.Pointer[EventSink]
}

// Hooks are test seams (failpoints) on the charge path. Production leaves them nil.
type Hooks struct {
	// BatchCommitted runs after a batch of renewals (RenewBatch) commits, before any of its charges.
	BatchCommitted func(attemptIDs []string) error
	// BeforeCharge runs after the attempt is committed and before the gateway is called.
	BeforeCharge func(attemptID string) error
	// AfterCharge runs after the gateway answered and before the outcome is committed.
	AfterCharge func(attemptID string, outcome gateway.Outcome) error
	// AfterRecord runs after the outcome is committed and before the caller (a job) returns.
	AfterRecord func(attemptID string) error
	// BeforeRefund runs after a refund is committed (and its send counted) and before the gateway is called.
	BeforeRefund func(refundID string) error
	// AfterRefund runs after the gateway answered a refund and before the answer is committed.
	AfterRefund func(refundID string) error
	// AfterRefundRecord runs after a refund's answer is committed and before the caller returns.
	AfterRefundRecord func(refundID string) error
}

// Config is what a Service is built from.
type Config struct {
	Pool      *pgxpool.Pool
	Clock     clock.Clock
	Gateways  Gateways
	Vault     KeyVault
	Policies  *dunning.Policies
	Scheduler Scheduler
	Log       *slog.Logger
	Hooks     Hooks
	// Registry receives billing_charge_outcomes_total; nil registers nothing.
	Registry prometheus.Registerer
	// InvoicePrefix is the merchant's document-number prefix; empty means DefaultInvoicePrefix.
	InvoicePrefix string
	// InboxPool is a small pool of its own for webhook receipt, so a gateway's POST never queues for a
	// connection behind the job workers (nil: Pool).
	InboxPool *pgxpool.Pool
	// WebhookLookupWindow is how long after a webhook made us look an order up further webhooks for it
	// wait for one shared lookup (BILLING_WEBHOOK_LOOKUP_WINDOW; zero: DefaultWebhookLookupWindow).
	WebhookLookupWindow time.Duration
}

// New builds the billing service.
func New(c Config) *Service {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.InvoicePrefix == "" {
		c.InvoicePrefix = DefaultInvoicePrefix
	}
	if c.Policies == nil {
		c.Policies = dunning.NewPolicies(dunning.DefaultPolicy())
	}
	if c.InboxPool == nil {
		c.InboxPool = c.Pool
	}
	if c.WebhookLookupWindow <= 0 {
		c.WebhookLookupWindow = DefaultWebhookLookupWindow
	}
	return &Service{pool: c.Pool, clock: c.Clock, gateways: c.Gateways, vault: c.Vault, policies: c.Policies,
		sched: c.Scheduler, log: c.Log, hooks: c.Hooks, metrics: newChargeMetrics(c.Registry), prefix: c.InvoicePrefix,
		inbox: c.InboxPool, arrivals: make(chan struct{}, 1), lookupWindow: c.WebhookLookupWindow, sink: new(atomic.Pointer[EventSink])}
}

// WithPool is the same service on another connection pool: billingd gives the API and the workers pools
// of their own, so a request is never queued behind a billing day's workers for a connection.
func (s *Service) WithPool(p *pgxpool.Pool) *Service {
	c := *s
	c.pool = p
	return &c
}

// SetScheduler installs the scheduler (jobs needs the service to exist before it can schedule for it).
func (s *Service) SetScheduler(sched Scheduler) { s.sched = sched }

// SetVault installs the billing-key vault.
func (s *Service) SetVault(v KeyVault) { s.vault = v }

// Now is the domain clock's time.
func (s *Service) Now() time.Time { return s.clock.Now() }

func (s *Service) q(db dbx.DBTX) *store.Queries { return store.New(db) }

func (s *Service) inTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	return dbx.InTx(ctx, s.pool, f)
}
