package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
	"github.com/dunningworks/billing/statemachine"
)

// Invoice is API.md's invoice.
type Invoice struct {
	ID             string     `json:"id"`
	Number         *string    `json:"number"`
	CustomerID     string     `json:"customer_id"`
	SubscriptionID *string    `json:"subscription_id"`
	Kind           string     `json:"kind"`
	Status         string     `json:"status"`
	Currency       string     `json:"currency"`
	PeriodStart    time.Time  `json:"period_start"`
	PeriodEnd      time.Time  `json:"period_end"`
	Subtotal       string     `json:"subtotal"`
	Total          string     `json:"total"`
	AmountDue      string     `json:"amount_due"`
	AmountPaid     string     `json:"amount_paid"`
	AttemptCount   int        `json:"attempt_count"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	Lines          []Line     `json:"lines"`
	Attempts       []Attempt  `json:"attempts"`
	Version        int        `json:"version"`
	CreatedAt      time.Time  `json:"created_at"`
	FinalizedAt    *time.Time `json:"finalized_at"`
	PaidAt         *time.Time `json:"paid_at"`
	VoidedAt       *time.Time `json:"voided_at,omitempty"`
}

// Line is one invoice line.
type Line struct {
	Description string    `json:"description"`
	PlanID      *string   `json:"plan_id,omitempty"`
	UnitAmount  string    `json:"unit_amount"`
	Amount      string    `json:"amount"`
	Quantity    int       `json:"quantity"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	Proration   bool      `json:"proration"`
}

// Attempt is API.md's payment attempt.
type Attempt struct {
	ID           string     `json:"id"`
	InvoiceID    string     `json:"invoice_id"`
	BillingKeyID *string    `json:"billing_key_id"`
	Gateway      string     `json:"gateway"`
	OrderID      string     `json:"order_id"`
	Status       string     `json:"status"`
	Amount       string     `json:"amount"`
	Currency     string     `json:"currency"`
	DeclineCode  *string    `json:"decline_code"`
	DeclineClass *string    `json:"decline_class"`
	Reason       *string    `json:"failure_reason,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	ResolvedAt   *time.Time `json:"resolved_at"`
}

// draftLine is a line to put on a new invoice.
type draftLine struct {
	Description string
	PlanID      string
	Quantity    int
	UnitAmount  decimal.Decimal
	Amount      decimal.Decimal
	PeriodStart time.Time
	PeriodEnd   time.Time
	Proration   bool
}

type draftInvoice struct {
	CustomerID     string
	SubscriptionID string
	Kind           string
	Currency       string
	PeriodStart    time.Time
	PeriodEnd      time.Time
	Lines          []draftLine
}

// createFinalizedInvoice creates an invoice with its lines and finalizes it (amount fixed, receivable
// posted). For initial and renewal invoices the (subscription, period) unique index makes this
// idempotent: a second call returns the existing invoice and created=false.
func (s *Service) createFinalizedInvoice(ctx context.Context, tx pgx.Tx, d draftInvoice, now time.Time) (inv store.Invoice, created bool, err error) {
	total := decimal.Zero
	for _, l := range d.Lines {
		total = total.Add(l.Amount)
	}
	total = money.Round(total, d.Currency)
	amountDue := total
	if amountDue.IsNegative() {
		amountDue = decimal.Zero
	}
	row, err := s.q(tx).CreateInvoice(ctx, store.CreateInvoiceParams{
		ID: ids.New("inv"), CustomerID: d.CustomerID, SubscriptionID: strPtr(d.SubscriptionID), Kind: d.Kind,
		Currency: d.Currency, PeriodStart: d.PeriodStart, PeriodEnd: d.PeriodEnd, Subtotal: total, Total: total,
		AmountDue: amountDue, CreatedAt: now,
	})
	if errors.Is(err, pgx.ErrNoRows) { // ON CONFLICT DO NOTHING: this period's invoice exists
		existing, err := s.q(tx).GetInvoiceForPeriod(ctx, store.GetInvoiceForPeriodParams{SubscriptionID: strPtr(d.SubscriptionID), PeriodStart: d.PeriodStart})
		return existing, false, err
	}
	if err != nil {
		return row, false, fmt.Errorf("create invoice: %w", err)
	}
	for _, l := range d.Lines {
		if err := s.q(tx).AddInvoiceLine(ctx, store.AddInvoiceLineParams{
			InvoiceID: row.ID, Description: l.Description, PlanID: strPtr(l.PlanID), Quantity: int32(l.Quantity),
			UnitAmount: l.UnitAmount, Amount: l.Amount, PeriodStart: l.PeriodStart, PeriodEnd: l.PeriodEnd, Proration: l.Proration,
		}); err != nil {
			return row, false, fmt.Errorf("add invoice line: %w", err)
		}
	}
	refs := Refs{CustomerID: row.CustomerID, SubscriptionID: d.SubscriptionID, InvoiceID: row.ID}
	if err := s.emit(ctx, tx, EvtInvoiceCreated, refs, now, map[string]any{"kind": d.Kind, "total": money.String(total, d.Currency), "currency": d.Currency}); err != nil {
		return row, false, err
	}
	row, err = s.finalizeInvoice(ctx, tx, row, now)
	if err != nil {
		return row, true, err
	}
	// Credit on the customer's balance (an immediate downgrade's) is spent before any card is charged.
	row, err = s.applyCredit(ctx, tx, row, now)
	return row, true, err
}

// finalizeInvoice fixes the amount and posts the receivable: debit the customer, credit revenue.
func (s *Service) finalizeInvoice(ctx context.Context, tx pgx.Tx, inv store.Invoice, now time.Time) (store.Invoice, error) {
	next, err := statemachine.FireInvoice(ctx, statemachine.InvoiceStatus(inv.Status), statemachine.InvoiceFinalize, statemachine.InvoiceFacts{AmountPaidIsZero: inv.AmountPaid.IsZero()})
	if err != nil {
		return inv, err
	}
	p := invoiceParams(inv)
	p.Status = string(next)
	p.FinalizedAt = &now
	if inv.AmountDue.IsZero() {
		// Nothing to collect (a free plan, or credits covered it): paid on finalization.
		p.Status = string(statemachine.InvoicePaid)
		p.PaidAt = &now
	}
	row, err := s.q(tx).UpdateInvoice(ctx, p)
	if err != nil {
		return inv, fmt.Errorf("finalize invoice %s: %w", inv.ID, err)
	}
	// The number comes from the counter row in this transaction (numbers.go): gapless and unique because
	// a rollback returns it. The counter is the one lock every finalizer shares; it is taken after the
	// invoice's own locks, and callers keep finalizing transactions short.
	if row.Number == nil {
		number, err := s.NextNumber(ctx, tx, SeriesInvoice)
		if err != nil {
			return row, err
		}
		if err := s.q(tx).SetInvoiceNumber(ctx, store.SetInvoiceNumberParams{ID: row.ID, Number: &number}); err != nil {
			return row, fmt.Errorf("number invoice %s: %w", row.ID, err)
		}
		row.Number = &number
	}
	if inv.Total.IsPositive() {
		err := s.post(ctx, tx, "invoice_finalized", inv.ID, inv.CustomerID, "invoice "+inv.ID, now,
			Entry{Account: ReceivableAccount(inv.CustomerID), Currency: inv.Currency, Amount: inv.Total},
			Entry{Account: AccountRevenue, Currency: inv.Currency, Amount: inv.Total.Neg()})
		if err != nil {
			return row, err
		}
	}
	refs := Refs{CustomerID: inv.CustomerID, SubscriptionID: deref(inv.SubscriptionID), InvoiceID: inv.ID}
	if err := s.emit(ctx, tx, EvtInvoiceFinalized, refs, now, map[string]any{"amount_due": money.String(row.AmountDue, row.Currency), "currency": row.Currency}); err != nil {
		return row, err
	}
	if row.Status == string(statemachine.InvoicePaid) {
		return row, s.emit(ctx, tx, EvtInvoicePaid, refs, now, map[string]any{"amount_paid": "0"})
	}
	return row, nil
}

func invoiceParams(r store.Invoice) store.UpdateInvoiceParams {
	return store.UpdateInvoiceParams{ID: r.ID, Version: r.Version, Status: r.Status, AmountDue: r.AmountDue, AmountPaid: r.AmountPaid,
		AttemptCount: r.AttemptCount, NextAttemptAt: r.NextAttemptAt, FirstFailedAt: r.FirstFailedAt,
		FinalizedAt: r.FinalizedAt, PaidAt: r.PaidAt, VoidedAt: r.VoidedAt}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// GetInvoice returns an invoice with its lines and attempts.
func (s *Service) GetInvoice(ctx context.Context, id string) (Invoice, error) {
	row, err := s.q(s.pool).GetInvoice(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Invoice{}, apperr.NotFound("invoice", id)
	}
	if err != nil {
		return Invoice{}, err
	}
	return s.invoiceView(ctx, s.pool, row, true)
}

// InvoiceFilter narrows ListInvoices.
type InvoiceFilter struct {
	CustomerID     string
	SubscriptionID string
	Status         string
}

// ListInvoices lists invoices, oldest first.
func (s *Service) ListInvoices(ctx context.Context, f InvoiceFilter, p page.Request) (page.List[Invoice], error) {
	if f.Status != "" {
		valid := false
		for _, st := range statemachine.InvoiceStatuses() {
			valid = valid || string(st) == f.Status
		}
		if !valid {
			return page.List[Invoice]{}, apperr.Invalid("status", "must be draft, open, paid, void or uncollectible")
		}
	}
	rows, err := s.q(s.pool).ListInvoices(ctx, store.ListInvoicesParams{
		CustomerID: strPtr(f.CustomerID), SubscriptionID: strPtr(f.SubscriptionID), Status: strPtr(f.Status),
		HasCursor: p.HasCursor(), AfterTime: p.AfterTime, AfterID: p.AfterID, Max: int32(p.Limit + 1),
	})
	if err != nil {
		return page.List[Invoice]{}, err
	}
	out := make([]Invoice, 0, len(rows))
	for _, r := range rows {
		v, err := s.invoiceView(ctx, s.pool, r, true)
		if err != nil {
			return page.List[Invoice]{}, err
		}
		out = append(out, v)
	}
	return page.Build(out, p.Limit, func(i Invoice) (time.Time, string) { return i.CreatedAt, i.ID }), nil
}

func (s *Service) invoiceView(ctx context.Context, db dbx.DBTX, r store.Invoice, withChildren bool) (Invoice, error) {
	v := Invoice{ID: r.ID, Number: r.Number, CustomerID: r.CustomerID, SubscriptionID: r.SubscriptionID, Kind: r.Kind, Status: r.Status,
		Currency: r.Currency, PeriodStart: r.PeriodStart, PeriodEnd: r.PeriodEnd,
		Subtotal: money.String(r.Subtotal, r.Currency), Total: money.String(r.Total, r.Currency),
		AmountDue: money.String(r.AmountDue, r.Currency), AmountPaid: money.String(r.AmountPaid, r.Currency),
		AttemptCount: int(r.AttemptCount), NextAttemptAt: r.NextAttemptAt, Version: int(r.Version),
		CreatedAt: r.CreatedAt, FinalizedAt: r.FinalizedAt, PaidAt: r.PaidAt, VoidedAt: r.VoidedAt,
		Lines: []Line{}, Attempts: []Attempt{}}
	if !withChildren {
		return v, nil
	}
	lines, err := s.q(db).InvoiceLines(ctx, r.ID)
	if err != nil {
		return v, err
	}
	for _, l := range lines {
		v.Lines = append(v.Lines, Line{Description: l.Description, PlanID: l.PlanID, UnitAmount: money.String(l.UnitAmount, r.Currency),
			Amount: money.String(l.Amount, r.Currency), Quantity: int(l.Quantity), PeriodStart: l.PeriodStart, PeriodEnd: l.PeriodEnd, Proration: l.Proration})
	}
	attempts, err := s.q(db).InvoiceAttempts(ctx, r.ID)
	if err != nil {
		return v, err
	}
	for _, a := range attempts {
		v.Attempts = append(v.Attempts, attemptView(a))
	}
	return v, nil
}

func attemptView(a store.PaymentAttempt) Attempt {
	return Attempt{ID: a.ID, InvoiceID: a.InvoiceID, BillingKeyID: a.BillingKeyID, Gateway: a.Gateway, OrderID: a.OrderID,
		Status: a.Status, Amount: money.String(a.Amount, a.Currency), Currency: a.Currency, DeclineCode: a.DeclineCode,
		DeclineClass: a.DeclineClass, Reason: a.FailureReason, CreatedAt: a.CreatedAt, ResolvedAt: a.ResolvedAt}
}
