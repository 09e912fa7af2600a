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
	ID             string    `json:"id"`
	Number         *string   `json:"number"`
	CustomerID     string    `json:"customer_id"`
	SubscriptionID *string   `json:"subscription_id"`
	Kind           string    `json:"kind"`
	Status         string    `json:"status"`
	Currency       string    `json:"currency"`
	PeriodStart    time.Time `json:"period_start"`
	PeriodEnd      time.Time `json:"period_end"`
	Subtotal       string    `json:"subtotal"`
	TotalDiscount  string    `json:"total_discount"`
	// TotalExcludingTax is the supply value (공급가액): the total net of discount and tax.
	TotalExcludingTax string            `json:"total_excluding_tax"`
	Tax               string            `json:"tax"`
	Taxes             []InvoiceTax      `json:"taxes"`
	Discounts         []InvoiceDiscount `json:"discounts"`
	Total             string            `json:"total"`
	// CreditApplied is the customer's credit spent on this invoice (counted in amount_paid).
	CreditApplied string `json:"credit_applied"`
	AmountDue     string `json:"amount_due"`
	AmountPaid    string `json:"amount_paid"`
	// AmountRefunded is what was given back of amount_paid (refunds that succeeded, balance credits).
	AmountRefunded string `json:"amount_refunded"`
	// AmountCredited is what credit notes took off the invoice while it was open.
	AmountCredited string     `json:"amount_credited"`
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

// InvoiceTax is one tax rate's share of an invoice: the tax computed once on the sum of its lines.
type InvoiceTax struct {
	TaxRateID  string `json:"tax_rate_id"`
	Percentage string `json:"percentage"`
	Inclusive  bool   `json:"inclusive"`
	// TaxableAmount is what the tax was computed on: the lines' totals for an inclusive rate, their supply
	// values for an exclusive one.
	TaxableAmount string `json:"taxable_amount"`
	Amount        string `json:"amount"`
}

// InvoiceDiscount is one coupon's money off on an invoice.
type InvoiceDiscount struct {
	CouponID string `json:"coupon_id"`
	Amount   string `json:"amount"`
}

// Line is one invoice line. Amount is the price before money off and (for exclusive rates) tax;
// Total = Amount - Discount (+ Tax when the rate is exclusive) = SupplyValue + Tax.
type Line struct {
	Description string    `json:"description"`
	PlanID      *string   `json:"plan_id,omitempty"`
	UnitAmount  string    `json:"unit_amount"`
	Amount      string    `json:"amount"`
	Discount    string    `json:"discount"`
	CouponID    *string   `json:"coupon_id"`
	SupplyValue string    `json:"supply_value"`
	Tax         string    `json:"tax"`
	TaxRate     *LineTax  `json:"tax_rate"`
	Total       string    `json:"total"`
	Quantity    int       `json:"quantity"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	Proration   bool      `json:"proration"`
}

// LineTax is the rate a line was taxed at, as it was then.
type LineTax struct {
	ID         string `json:"id"`
	Percentage string `json:"percentage"`
	Inclusive  bool   `json:"inclusive"`
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
	// SendCount is how many times the attempt was handed to the gateway (the first send and every resend of
	// the same order id); SentAt is the last of them. Zero and null: the gateway never saw this attempt.
	SendCount int        `json:"send_count"`
	SentAt    *time.Time `json:"sent_at"`
}

// draftLine is a line to put on a new invoice: a price, with the coupon and tax rate that price it.
type draftLine = PriceLine

type draftInvoice struct {
	CustomerID     string
	SubscriptionID string
	Kind           string
	Currency       string
	PeriodStart    time.Time
	PeriodEnd      time.Time
	Lines          []draftLine
}

// createFinalizedInvoice composes an invoice (Compose: money off, tax, the customer's credit), creates it
// with its lines and finalizes it (amount fixed, receivable posted, credit spent). For initial and renewal
// invoices the (subscription, period) unique index makes this idempotent: a second call returns the
// existing invoice and created=false.
func (s *Service) createFinalizedInvoice(ctx context.Context, tx pgx.Tx, d draftInvoice, now time.Time) (inv store.Invoice, created bool, err error) {
	// Credit is read under the customer's credit lock, held to the commit: two invoices finalized at once
	// must not both spend it.
	account := CreditAccount(d.CustomerID)
	if err := s.q(tx).LockCustomerCredit(ctx, account); err != nil {
		return inv, false, err
	}
	balance, err := s.q(tx).CreditBalance(ctx, store.CreditBalanceParams{Account: account, Currency: d.Currency})
	if err != nil {
		return inv, false, err
	}
	c, err := Compose(ComposeInput{Currency: d.Currency, Lines: d.Lines, CreditAvailable: decimal.Max(decimal.Zero, balance.Neg())})
	if err != nil {
		return inv, false, err
	}
	amountDue := decimal.Max(decimal.Zero, c.Total) // the credit is applied after finalization, as a payment
	row, err := s.q(tx).CreateInvoice(ctx, store.CreateInvoiceParams{
		ID: ids.New("inv"), CustomerID: d.CustomerID, SubscriptionID: strPtr(d.SubscriptionID), Kind: d.Kind,
		Currency: d.Currency, PeriodStart: d.PeriodStart, PeriodEnd: d.PeriodEnd, Subtotal: c.Subtotal, Total: c.Total,
		AmountDue: amountDue, CreatedAt: now, TotalDiscount: c.Discount, TotalExcludingTax: c.SupplyValue, Tax: c.Tax,
		TaxFree: c.TaxFree, CreditApplied: c.CreditApplied,
	})
	if errors.Is(err, pgx.ErrNoRows) { // ON CONFLICT DO NOTHING: this period's invoice exists
		existing, err := s.q(tx).GetInvoiceForPeriod(ctx, store.GetInvoiceForPeriodParams{SubscriptionID: strPtr(d.SubscriptionID), PeriodStart: d.PeriodStart})
		return existing, false, err
	}
	if err != nil {
		return row, false, fmt.Errorf("create invoice: %w", err)
	}
	for _, l := range c.Lines {
		p := store.AddInvoiceLineParams{
			InvoiceID: row.ID, Description: l.Description, PlanID: strPtr(l.PlanID), Quantity: int32(l.Quantity),
			UnitAmount: l.UnitAmount, Amount: l.Amount, PeriodStart: l.PeriodStart, PeriodEnd: l.PeriodEnd, Proration: l.Proration,
			Discount: l.DiscountAmount, Tax: l.Tax, SupplyValue: l.SupplyValue, Total: l.Total,
		}
		if l.Discount != nil && !l.DiscountAmount.IsZero() {
			p.CouponID = &l.Discount.CouponID
		}
		if l.TaxRate != nil {
			pct, incl := l.TaxRate.Percentage, l.TaxRate.Inclusive
			p.TaxRateID, p.TaxPercentage, p.TaxInclusive = &l.TaxRate.ID, decimal.NullDecimal{Decimal: pct, Valid: true}, &incl
		}
		if err := s.q(tx).AddInvoiceLine(ctx, p); err != nil {
			return row, false, fmt.Errorf("add invoice line: %w", err)
		}
	}
	refs := Refs{CustomerID: row.CustomerID, SubscriptionID: d.SubscriptionID, InvoiceID: row.ID}
	if err := s.emit(ctx, tx, EvtInvoiceCreated, refs, now, map[string]any{"kind": d.Kind, "total": money.String(c.Total, d.Currency), "currency": d.Currency}); err != nil {
		return row, false, err
	}
	row, err = s.finalizeInvoice(ctx, tx, row, c, now)
	if err != nil {
		return row, true, err
	}
	// Credit on the customer's balance is spent before any card is charged.
	row, err = s.applyCredit(ctx, tx, row, c.CreditApplied, now)
	return row, true, err
}

// finalizeInvoice fixes the amount and posts the receivable: debit the customer, credit revenue.
// The posting follows the composition: debit the receivable with the total, credit revenue with the
// supply value before money off, debit the discount account with the money off (its supply part), and
// credit tax owed with the tax. A negative total (unused time) posts the same legs the other way round.
func (s *Service) finalizeInvoice(ctx context.Context, tx pgx.Tx, inv store.Invoice, c Composition, now time.Time) (store.Invoice, error) {
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
	if !c.Total.IsZero() || !c.Discount.IsZero() {
		err := s.post(ctx, tx, "invoice_finalized", inv.ID, inv.CustomerID, "invoice "+inv.ID, now,
			Entry{Account: ReceivableAccount(inv.CustomerID), Currency: inv.Currency, Amount: c.Total},
			Entry{Account: AccountRevenue, Currency: inv.Currency, Amount: c.SupplyValue.Add(c.DiscountSupply).Neg()},
			Entry{Account: AccountDiscounts, Currency: inv.Currency, Amount: c.DiscountSupply},
			Entry{Account: AccountTaxOwed, Currency: inv.Currency, Amount: c.Tax.Neg()})
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
		TotalDiscount: money.String(r.TotalDiscount, r.Currency), TotalExcludingTax: money.String(r.TotalExcludingTax, r.Currency),
		Tax: money.String(r.Tax, r.Currency), CreditApplied: money.String(r.CreditApplied, r.Currency),
		Taxes: []InvoiceTax{}, Discounts: []InvoiceDiscount{},
		AmountDue: money.String(r.AmountDue, r.Currency), AmountPaid: money.String(r.AmountPaid, r.Currency),
		AmountRefunded: money.String(r.AmountRefunded, r.Currency), AmountCredited: money.String(r.AmountCredited, r.Currency),
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
	taxes := map[string]*[2]decimal.Decimal{} // rate id -> taxable amount, tax
	discounts := map[string]decimal.Decimal{}
	for _, l := range lines {
		line := Line{Description: l.Description, PlanID: l.PlanID, UnitAmount: money.String(l.UnitAmount, r.Currency),
			Amount: money.String(l.Amount, r.Currency), Quantity: int(l.Quantity), PeriodStart: l.PeriodStart, PeriodEnd: l.PeriodEnd, Proration: l.Proration,
			Discount: money.String(l.Discount, r.Currency), CouponID: l.CouponID, SupplyValue: money.String(l.SupplyValue, r.Currency),
			Tax: money.String(l.Tax, r.Currency), Total: money.String(l.Total, r.Currency)}
		if l.TaxRateID != nil {
			incl := l.TaxInclusive != nil && *l.TaxInclusive
			line.TaxRate = &LineTax{ID: *l.TaxRateID, Percentage: l.TaxPercentage.Decimal.String(), Inclusive: incl}
			t, ok := taxes[*l.TaxRateID]
			if !ok {
				t = &[2]decimal.Decimal{}
				taxes[*l.TaxRateID] = t
				v.Taxes = append(v.Taxes, InvoiceTax{TaxRateID: *l.TaxRateID, Percentage: line.TaxRate.Percentage, Inclusive: incl})
			}
			base := l.SupplyValue
			if incl {
				base = l.Total
			}
			t[0], t[1] = t[0].Add(base), t[1].Add(l.Tax)
		}
		if l.CouponID != nil {
			if _, ok := discounts[*l.CouponID]; !ok {
				v.Discounts = append(v.Discounts, InvoiceDiscount{CouponID: *l.CouponID})
			}
			discounts[*l.CouponID] = discounts[*l.CouponID].Add(l.Discount)
		}
		v.Lines = append(v.Lines, line)
	}
	for i := range v.Taxes {
		t := taxes[v.Taxes[i].TaxRateID]
		v.Taxes[i].TaxableAmount, v.Taxes[i].Amount = money.String(t[0], r.Currency), money.String(t[1], r.Currency)
	}
	for i := range v.Discounts {
		v.Discounts[i].Amount = money.String(discounts[v.Discounts[i].CouponID], r.Currency)
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
		DeclineClass: a.DeclineClass, Reason: a.FailureReason, CreatedAt: a.CreatedAt, ResolvedAt: a.ResolvedAt,
		SendCount: int(a.SendCount), SentAt: a.SentAt}
}
