package mail

import (
	"context"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/config"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/store"
)

// Statuses of an outbox row (migrations/sql/00015_customer_emails.sql explains each).
const (
	StatusQueued  = "queued"
	StatusSending = "sending"
	StatusSent    = "sent"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
)

// Links makes the link an email carries to the customer's page (package portal signs it; app wires it).
type Links interface {
	CustomerPage(ctx context.Context, customerID string) (string, error)
}

// Receipts makes an invoice's PDF receipt (package portal; app wires it). An error or no bytes sends
// the receipt email without the attachment.
type Receipts interface {
	PDF(ctx context.Context, invoiceID string) ([]byte, error)
}

// Billing is what emails are written from: package billing's reads.
type Billing interface {
	GetCustomer(ctx context.Context, id string) (billing.Customer, error)
	GetSubscription(ctx context.Context, id string) (billing.Subscription, error)
	GetInvoice(ctx context.Context, id string) (billing.Invoice, error)
	GetPlan(ctx context.Context, id string) (billing.Plan, error)
	// InvoicePayment is the card charge that paid an invoice (ok false: no card paid it).
	InvoicePayment(ctx context.Context, invoiceID string) (p billing.CardPayment, ok bool, err error)
	// UpcomingBackup is the backup card an open invoice goes to next (ok false: none).
	UpcomingBackup(ctx context.Context, invoiceID string) (b billing.BackupCharge, ok bool, err error)
}

// Tuning are the knobs of dispatch and delivery. Zero fields take the defaults; tests shrink them.
type Tuning struct {
	// Interval is how often the leader enqueues due emails (default 1s).
	Interval time.Duration
	// BackoffBase is the wait after the first failed attempt, doubled after each (default 1m), capped
	// at BackoffMax (default 1h).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// MaxAttempts is how many times an email is tried before it is marked failed (default 12: about
	// eight hours of retries).
	MaxAttempts int
	// Timeout bounds one SMTP conversation, dial to QUIT (default 30s).
	Timeout time.Duration
	// Lease is how long a claimed row belongs to its sender (default Timeout + 90s): past it, a row still
	// 'sending' is taken to be orphaned by a dead sender and sent again. It must outlast a send and its
	// recording, or a slow sender and a rescuer would both send.
	Lease time.Duration
}

func (t Tuning) withDefaults() Tuning {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Interval, time.Second)
	def(&t.BackoffBase, time.Minute)
	def(&t.BackoffMax, time.Hour)
	def(&t.Timeout, 30*time.Second)
	def(&t.Lease, t.Timeout+90*time.Second)
	if t.MaxAttempts <= 0 {
		t.MaxAttempts = 12
	}
	return t
}

// Backoff is the wait after the attempt-th failed attempt.
func (t Tuning) Backoff(attempt int) time.Duration {
	t = t.withDefaults()
	d := t.BackoffBase
	for i := 1; i < attempt && d < t.BackoffMax; i++ {
		d *= 2
	}
	return min(d, t.BackoffMax)
}

// Hooks are failpoints for the crash tests; production leaves them nil. An error from one ends Send
// there, as a crash would, leaving the row as it is.
type Hooks struct {
	// BeforeSend runs after the row is claimed ('sending', Message-ID fixed) and before SMTP.
	BeforeSend func(id int64) error
	// AfterSend runs after the server accepted the message and before the outcome is recorded.
	AfterSend func(id int64) error
}

// Ticket asks for attempt number Attempt of one email.
type Ticket struct {
	ID      int64
	Attempt int
}

// Enqueuer puts tickets on the job queue in the caller's transaction (package jobs, with River). A
// ticket already waiting or running must not be duplicated.
type Enqueuer interface {
	EnqueueTx(ctx context.Context, tx pgx.Tx, tickets ...Ticket) error
}

// Config is what a Service is built from.
type Config struct {
	Pool    *pgxpool.Pool
	Billing Billing
	// From is the sender (BILLING_MAIL_FROM); SMTP the server.
	From string
	SMTP config.SMTP
	// Templates are the parsed templates (LoadTemplates); Kinds the kinds that are sent (ParseKinds;
	// nil: all).
	Templates *Templates
	Kinds     map[Kind]bool
	// Links and Receipts are optional: without them emails carry no link, receipts no PDF.
	Links    Links
	Receipts Receipts
	Log      *slog.Logger
	Registry prometheus.Registerer
	// Wall is the clock of the outbox's bookkeeping (default the system clock), never the test clock.
	Wall   clock.Clock
	Tuning Tuning
	Hooks  Hooks
}

// Service queues and sends customer emails.
type Service struct {
	pool      *pgxpool.Pool
	billing   Billing
	from      *mail.Address
	smtp      config.SMTP
	templates *Templates
	kinds     map[Kind]bool
	links     Links
	receipts  Receipts
	log       *slog.Logger
	wall      clock.Clock
	t         Tuning
	hooks     Hooks
	enq       Enqueuer
	metrics   metrics
	// domain is the right-hand side of every Message-ID: the sender's domain.
	domain string
}

// New builds the service. Install an Enqueuer (SetEnqueuer) before dispatching.
func New(c Config) (*Service, error) {
	from, err := mail.ParseAddress(c.From)
	if err != nil {
		return nil, fmt.Errorf("mail sender %q: %w", c.From, err)
	}
	if c.Templates == nil {
		if c.Templates, err = LoadTemplates(""); err != nil {
			return nil, err
		}
	}
	if c.Kinds == nil {
		c.Kinds, _ = ParseKinds("")
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Wall == nil {
		c.Wall = clock.System{}
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	_, domain, _ := strings.Cut(from.Address, "@")
	return &Service{pool: c.Pool, billing: c.Billing, from: from, smtp: c.SMTP, templates: c.Templates, kinds: c.Kinds,
		links: c.Links, receipts: c.Receipts, log: c.Log, wall: c.Wall, t: c.Tuning.withDefaults(), hooks: c.Hooks,
		metrics: newMetrics(c.Registry), domain: domain}, nil
}

// SetEnqueuer installs the job queue (package jobs builds it after the service exists).
func (s *Service) SetEnqueuer(e Enqueuer) { s.enq = e }

// SetLinks installs the customer-page links (package portal's signer).
func (s *Service) SetLinks(l Links) { s.links = l }

// SetReceipts installs the receipt PDFs (package portal).
func (s *Service) SetReceipts(r Receipts) { s.receipts = r }

// Interval is how often Dispatch should run.
func (s *Service) Interval() time.Duration { return s.t.Interval }

// Timeout is one send's SMTP timeout.
func (s *Service) Timeout() time.Duration { return s.t.Timeout }

// MessageID is the Message-ID of outbox row id: fixed by the id alone, so every attempt of one email,
// on any replica, carries the same one and a duplicate is recognizable as the same message.
func (s *Service) MessageID(id int64) string {
	return fmt.Sprintf("<billing-mail-%d@%s>", id, s.domain)
}

func (s *Service) q(db dbx.DBTX) *store.Queries { return store.New(db) }

type metrics struct {
	sends *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{sends: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "billing_mail_sends_total",
		Help: "Customer email attempts by outcome: sent, retrying (4xx or no answer), failed (5xx or out of attempts), skipped.",
	}, []string{"outcome"})}
	reg.MustRegister(m.sends)
	for _, o := range []string{"sent", "retrying", "failed", "skipped"} {
		m.sends.WithLabelValues(o)
	}
	return m
}
