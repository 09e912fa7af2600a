package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/store"
)

// Kinds of finding.
const (
	// MissingHere: the gateway holds money for an order we have not booked as collected.
	MissingHere = "missing_here"
	// MissingThere: we booked money as collected that the gateway does not hold.
	MissingThere = "missing_there"
	// AmountMismatch: both sides hold money for the order, but not the same amount (or currency).
	AmountMismatch = "amount_mismatch"
)

// Day is the length of the daily window. Windows are UTC days.
const Day = 24 * time.Hour

// Payments is our side of a reconciliation, which billing keeps (billing.Service implements it):
// reconciliation reads attempts and the ledger through it, never from billing's tables.
type Payments interface {
	// CollectedPayments lists the attempts at gw created in [from, to) that collected money.
	CollectedPayments(ctx context.Context, gw string, from, to time.Time) ([]billing.GatewayPayment, error)
	// PaymentsByOrderID finds gw's attempts with these order ids, whatever their status.
	PaymentsByOrderID(ctx context.Context, gw string, orderIDs []string) ([]billing.GatewayPayment, error)
}

// Config builds a Service.
type Config struct {
	Pool     *pgxpool.Pool // reconciliation's own tables: runs and findings
	Payments Payments
	Clock    clock.Clock
	Gateways billing.Gateways
	// Registry receives the findings and runs counters (nil: a private registry).
	Registry prometheus.Registerer
	Log      *slog.Logger
	// Refunds books refunds made at the gateway (billing.Service.SyncRefunds), for apply_refund.
	Refunds RefundSyncer
}

// RefundSyncer books the refunds a gateway reports for a payment that the books do not have yet.
type RefundSyncer interface {
	SyncRefunds(ctx context.Context, attemptID string) (int, error)
}

// Service runs reconciliations and lets support resolve their findings.
type Service struct {
	pool     *pgxpool.Pool
	payments Payments
	clock    clock.Clock
	gateways billing.Gateways
	refunds  RefundSyncer
	log      *slog.Logger
	findings *prometheus.CounterVec
	runs     *prometheus.CounterVec
}

// New builds the reconciliation service and registers its metrics.
func New(c Config) *Service {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	s := &Service{pool: c.Pool, payments: c.Payments, clock: c.Clock, gateways: c.Gateways, log: c.Log, refunds: c.Refunds,
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billing_reconciliation_findings_total",
			Help: "New reconciliation findings by gateway and kind (missing_here, missing_there, amount_mismatch).",
		}, []string{"gateway", "kind"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billing_reconciliation_runs_total",
			Help: "Reconciliation runs by gateway and final status (completed, failed).",
		}, []string{"gateway", "status"}),
	}
	c.Registry.MustRegister(s.findings, s.runs)
	return s
}

// Run is one reconciliation of one gateway over [From, To).
type Run struct {
	ID         string     `json:"id"`
	Gateway    string     `json:"gateway"`
	From       time.Time  `json:"window_from"`
	To         time.Time  `json:"window_to"`
	Status     string     `json:"status"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	// Matched counts orders both sides agree on; Findings the orders they disagree on (new or already
	// known), of which NewFindings were stored by this run.
	Matched     int `json:"matched"`
	Findings    int `json:"findings"`
	NewFindings int `json:"new_findings"`
	// Unsettled counts orders whose attempt is still pending or unknown (the reconciler's business, not a
	// finding); Unverified those the gateway could not confirm either way this time.
	Unsettled  int    `json:"unsettled"`
	Unverified int    `json:"unverified"`
	Error      string `json:"error,omitempty"`
}

// ErrGatewayNotEnabled is returned for a gateway this process has no adapter for.
var ErrGatewayNotEnabled = errors.New("gateway not enabled")

// Run reconciles gateway gw over [from, to) and stores the run and its findings.
func (s *Service) Run(ctx context.Context, gw string, from, to time.Time) (Run, error) {
	if !from.Before(to) {
		return Run{}, fmt.Errorf("reconcile %s: empty window [%s, %s)", gw, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	g, ok := s.gateways.Get(gw)
	if !ok {
		return Run{}, fmt.Errorf("reconcile %s: %w", gw, ErrGatewayNotEnabled)
	}
	q := store.New(s.pool)
	row, err := q.CreateRun(ctx, store.CreateRunParams{ID: ids.New("recrun"), Gateway: gw, WindowFrom: from.UTC(), WindowTo: to.UTC(), StartedAt: s.clock.Now()})
	if err != nil {
		return Run{}, fmt.Errorf("reconcile %s: create run: %w", gw, err)
	}
	run := Run{ID: row.ID, Gateway: gw, From: row.WindowFrom, To: row.WindowTo, StartedAt: row.StartedAt}
	cmpErr := s.compare(ctx, g, &run)
	run.Status = "completed"
	var msg *string
	if cmpErr != nil {
		run.Status, run.Error = "failed", cmpErr.Error()
		msg = &run.Error
	}
	// The run's record is written even when ctx was canceled mid-way, so a failed run is never left "running".
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := s.clock.Now()
	if _, err := q.FinishRun(fctx, store.FinishRunParams{ID: run.ID, FinishedAt: &now, Status: run.Status,
		Matched: int32(run.Matched), Findings: int32(run.Findings), Error: msg}); err != nil {
		return run, errors.Join(cmpErr, fmt.Errorf("reconcile %s: finish run: %w", gw, err))
	}
	run.FinishedAt = &now
	s.runs.WithLabelValues(gw, run.Status).Inc()
	if cmpErr != nil {
		return run, fmt.Errorf("reconcile %s [%s, %s): %w", gw, from.Format(time.RFC3339), to.Format(time.RFC3339), cmpErr)
	}
	level := slog.LevelInfo
	if run.NewFindings > 0 {
		level = slog.LevelWarn
	}
	s.log.Log(ctx, level, "reconciliation finished", "gateway", gw, "run_id", run.ID, "from", run.From, "to", run.To,
		"matched", run.Matched, "findings", run.Findings, "new_findings", run.NewFindings, "unsettled", run.Unsettled, "unverified", run.Unverified)
	return run, nil
}

// PreviousDay is the UTC day before the one containing now: the daily job's window.
func PreviousDay(now time.Time) (from, to time.Time) {
	to = now.UTC().Truncate(Day)
	return to.Add(-Day), to
}

// RunDaily reconciles each gateway over the previous day of the domain clock, unless a completed run of
// that window exists: the periodic job may fire on several replicas or several times a day, and a
// restart catches up. Under the test clock "yesterday" moves with the clock.
func (s *Service) RunDaily(ctx context.Context, gateways []string) ([]Run, error) {
	from, to := PreviousDay(s.clock.Now())
	var runs []Run
	var errs []error
	for _, gw := range gateways {
		done, err := store.New(s.pool).CompletedRunExists(ctx, store.CompletedRunExistsParams{Gateway: gw, WindowFrom: from, WindowTo: to})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if done {
			continue
		}
		run, err := s.Run(ctx, gw, from, to)
		if err != nil {
			errs = append(errs, err)
		}
		if run.ID != "" {
			runs = append(runs, run)
		}
	}
	return runs, errors.Join(errs...)
}

// theirOrder is what the gateway's transaction list says about one order within the window.
type theirOrder struct {
	paymentKey string
	currency   string
	charged    decimal.Decimal // collected in the window
	refunded   decimal.Decimal // canceled or refunded in the window
	uncertain  bool            // a line whose held amount the list cannot tell (e.g. a partial refund)
}

func (t *theirOrder) held() decimal.Decimal { return t.charged.Sub(t.refunded) }

// ourPayment is our side of one order.
type ourPayment struct {
	attemptID string
	status    string
	currency  string
	held      decimal.Decimal // what the ledger holds for it at the gateway's clearing account
}

// addLine folds one transaction line into its order. Toss lists a DONE line for a payment and one
// CANCELED/PARTIAL_CANCELED line per cancel (carrying the canceled amount); Stripe lists one line per
// charge whose status says whether it was refunded.
func (t *theirOrder) addLine(tx gateway.Transaction) {
	if t.paymentKey == "" {
		t.paymentKey = tx.PaymentKey
	}
	if t.currency == "" {
		t.currency = tx.Currency
	}
	switch strings.ToUpper(tx.Status) {
	case "DONE", "SUCCEEDED":
		t.charged = t.charged.Add(tx.Amount)
	case "CANCELED", "PARTIAL_CANCELED":
		t.refunded = t.refunded.Add(tx.Amount)
	case "REFUNDED", "FAILED":
		// A fully refunded or failed charge holds nothing.
	case "PARTIALLY_REFUNDED":
		t.charged = t.charged.Add(tx.Amount)
		t.uncertain = true
	default:
		t.uncertain = true
	}
}

// compare fills run with the window's matches and findings.
func (s *Service) compare(ctx context.Context, g gateway.Gateway, run *Run) error {
	gw := run.Gateway
	txs, err := g.Transactions(ctx, run.From, run.To)
	if err != nil {
		return fmt.Errorf("gateway transactions: %w", err)
	}
	theirs := map[string]*theirOrder{}
	for _, tx := range txs {
		id := tx.OrderID
		if id == "" {
			// A charge made outside this service (no order id of ours): still money at the gateway.
			id = "txn:" + tx.TransactionKey
		}
		t := theirs[id]
		if t == nil {
			t = &theirOrder{}
			theirs[id] = t
		}
		t.addLine(tx)
	}

	ours := map[string]ourPayment{}
	rows, err := s.payments.CollectedPayments(ctx, gw, run.From, run.To)
	if err != nil {
		return fmt.Errorf("our payments: %w", err)
	}
	for _, r := range rows {
		ours[r.OrderID] = ourPayment{attemptID: r.AttemptID, status: r.Status, currency: r.Currency, held: r.LedgerHeld}
	}
	// Their orders may be ours from another window (a resend the next day, a refund of an old payment) or
	// attempts that never collected (declined, failed): fetch them by order id, whatever their status.
	var others []string
	for id := range theirs {
		if _, ok := ours[id]; !ok {
			others = append(others, id)
		}
	}
	if len(others) > 0 {
		more, err := s.payments.PaymentsByOrderID(ctx, gw, others)
		if err != nil {
			return fmt.Errorf("attempts by order id: %w", err)
		}
		for _, r := range more {
			held := decimal.Zero
			if r.Status == "succeeded" || r.Status == "reversed" {
				held = r.LedgerHeld
			}
			ours[r.OrderID] = ourPayment{attemptID: r.AttemptID, status: r.Status, currency: r.Currency, held: held}
		}
	}

	orders := make([]string, 0, len(theirs)+len(ours))
	seen := map[string]bool{}
	for id := range theirs {
		orders, seen[id] = append(orders, id), true
	}
	for id := range ours {
		if !seen[id] {
			orders = append(orders, id)
		}
	}
	sort.Strings(orders) // a reproducible order of lookups and finding ids in logs
	for _, id := range orders {
		if err := ctx.Err(); err != nil {
			return err
		}
		o, haveOurs := ours[id]
		if haveOurs && (o.status == "pending" || o.status == "unknown") {
			run.Unsettled++
			continue
		}
		t := theirs[id]
		ourHeld, ourCur := decimal.Zero, ""
		if haveOurs {
			ourHeld, ourCur = o.held, o.currency
		}
		if t != nil && !t.uncertain && agree(ourHeld, ourCur, t.held(), t.currency) {
			run.Matched++
			continue
		}
		// The list and our books disagree (or the list cannot tell): ask the gateway about the order now.
		f, verified, err := s.confirm(ctx, g, id, t)
		if err != nil {
			return err
		}
		if !verified {
			run.Unverified++
			continue
		}
		if agree(ourHeld, ourCur, f.theirHeld, f.currency) {
			run.Matched++
			continue
		}
		f.kind = classify(ourHeld, f.theirHeld)
		if haveOurs {
			f.attemptID, f.ourAmount = o.attemptID, &ourHeld
			if f.currency == "" {
				f.currency = o.currency
			}
		}
		created, err := s.store(ctx, run, id, f)
		if err != nil {
			return err
		}
		run.Findings++
		if created {
			run.NewFindings++
		}
	}
	return nil
}

// candidate is a disagreement being confirmed.
type candidate struct {
	kind       string
	theirHeld  decimal.Decimal
	currency   string
	paymentKey string
	attemptID  string
	ourAmount  *decimal.Decimal
}

// confirm asks the gateway what it holds for the order now. verified is false when it cannot tell (an
// unknown answer, a rate limit): the order is left for the next run rather than reported on a guess.
func (s *Service) confirm(ctx context.Context, g gateway.Gateway, orderID string, t *theirOrder) (candidate, bool, error) {
	var c candidate
	if t != nil {
		c.paymentKey, c.currency = t.paymentKey, t.currency
	}
	if strings.HasPrefix(orderID, "txn:") {
		// Not one of our order ids, so there is nothing to look up: the list is all we know.
		if t == nil || t.uncertain {
			return c, false, nil
		}
		c.theirHeld = t.held()
		return c, true, nil
	}
	out, err := g.Lookup(ctx, orderID)
	if err != nil {
		if errors.Is(err, gateway.ErrTryLater) {
			return c, false, nil
		}
		return c, false, fmt.Errorf("look up order %s: %w", orderID, err)
	}
	if out.PaymentKey != "" {
		c.paymentKey = out.PaymentKey
	}
	if out.Currency != "" {
		c.currency = out.Currency
	}
	switch out.Kind {
	case gateway.Succeeded:
		// A partly refunded payment is Succeeded; what it holds is what was not refunded.
		switch {
		case out.Amount.IsPositive():
			c.theirHeld = decimal.Max(out.Amount.Sub(out.Refunded), decimal.Zero)
		case t != nil && !t.uncertain:
			c.theirHeld = t.held()
		default:
			return c, false, nil
		}
	case gateway.Canceled:
		switch {
		case out.Amount.IsPositive() && out.Refunded.IsPositive():
			c.theirHeld = decimal.Max(out.Amount.Sub(out.Refunded), decimal.Zero)
		case t != nil && t.charged.IsPositive() && !t.uncertain:
			// The adapter did not say how much was canceled: what is left is known only if the window
			// holds the payment itself.
			c.theirHeld = decimal.Max(t.held(), decimal.Zero)
		}
	case gateway.Declined, gateway.NotFound:
		c.theirHeld = decimal.Zero
	default:
		return c, false, nil
	}
	return c, true, nil
}

func agree(ours decimal.Decimal, ourCur string, theirs decimal.Decimal, theirCur string) bool {
	if !ours.Equal(theirs) {
		return false
	}
	return ours.IsZero() || ourCur == "" || theirCur == "" || strings.EqualFold(ourCur, theirCur)
}

func classify(ours, theirs decimal.Decimal) string {
	switch {
	case !ours.IsPositive() && theirs.IsPositive():
		return MissingHere
	case ours.IsPositive() && !theirs.IsPositive():
		return MissingThere
	default:
		return AmountMismatch
	}
}

// store records a finding once per (gateway, kind, order id); created reports whether it is new.
func (s *Service) store(ctx context.Context, run *Run, orderID string, c candidate) (bool, error) {
	p := store.InsertFindingParams{ID: ids.New("recf"), RunID: run.ID, Gateway: run.Gateway, Kind: c.kind, OrderID: orderID,
		PaymentKey: nonEmpty(c.paymentKey), AttemptID: nonEmpty(c.attemptID), Currency: nonEmpty(c.currency),
		TheirAmount: decimal.NewNullDecimal(c.theirHeld), CreatedAt: s.clock.Now()}
	if c.ourAmount != nil {
		p.OurAmount = decimal.NewNullDecimal(*c.ourAmount)
	}
	_, err := store.New(s.pool).InsertFinding(ctx, p)
	if isNoRows(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store %s finding for %s: %w", c.kind, orderID, err)
	}
	s.findings.WithLabelValues(run.Gateway, c.kind).Inc()
	s.log.Warn("reconciliation finding", "gateway", run.Gateway, "kind", c.kind, "order_id", orderID,
		"attempt_id", c.attemptID, "their_amount", c.theirHeld, "currency", c.currency, "run_id", run.ID)
	return true, nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
