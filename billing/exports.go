package billing

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
)

// Exports for accountants: invoices, payment attempts and credit notes created in a range, one row each,
// amounts as decimal strings with the currency's minor unit, times RFC 3339 UTC. The rows are read in
// pages of exportPage inside one read-only repeatable-read transaction, so a long export is one consistent
// snapshot and never more than a page in memory.

// Export kinds.
const (
	ExportInvoices    = "invoices"
	ExportAttempts    = "attempts"
	ExportCreditNotes = "credit-notes"
)

const exportPage = 500

// ExportColumns are each export's header row.
var ExportColumns = map[string][]string{
	ExportInvoices: {"id", "number", "customer_id", "subscription_id", "kind", "status", "currency", "period_start", "period_end",
		"subtotal", "total_discount", "total_excluding_tax", "tax", "total", "credit_applied", "amount_due", "amount_paid",
		"amount_refunded", "amount_credited", "created_at", "finalized_at", "paid_at", "voided_at"},
	ExportAttempts: {"id", "invoice_id", "customer_id", "billing_key_id", "gateway", "order_id", "seq", "status", "amount",
		"currency", "amount_refunded", "decline_code", "decline_class", "backup", "offline_reference", "created_at", "resolved_at"},
	ExportCreditNotes: {"id", "number", "customer_id", "invoice_id", "currency", "amount", "method", "status", "origin", "reason",
		"created_at", "issued_at", "voided_at"},
}

// ExportRange validates an export's ?from=&to= (RFC 3339; to defaults to now, from to 90 days before to).
func (s *Service) ExportRange(from, to string) (AnalyticsRange, error) {
	return ParseAnalyticsRange(AnalyticsQuery{From: from, To: to, Interval: IntervalMonth}, s.clock.Now())
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func rfc3339p(t *time.Time) string {
	if t == nil {
		return ""
	}
	return rfc3339(*t)
}

// Export streams the rows of kind created in [r.From, r.To) to emit, oldest first. An error from emit
// (the client went away) stops it.
func (s *Service) Export(ctx context.Context, kind string, r AnalyticsRange, emit func(row []string) error) error {
	if _, ok := ExportColumns[kind]; !ok {
		return apperr.NotFound("export", kind)
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	q := s.q(tx)
	afterTime, afterID := r.From, ""
	for {
		var n int
		var err error
		switch kind {
		case ExportInvoices:
			var rows []store.ExportInvoicesRow
			rows, err = q.ExportInvoices(ctx, store.ExportInvoicesParams{Since: r.From, Until: r.To, AfterTime: afterTime, AfterID: afterID, Max: exportPage})
			for _, x := range rows {
				c := x.Currency
				if err = emit([]string{x.ID, deref(x.Number), x.CustomerID, deref(x.SubscriptionID), x.Kind, x.Status, c,
					rfc3339(x.PeriodStart), rfc3339(x.PeriodEnd), money.String(x.Subtotal, c), money.String(x.TotalDiscount, c),
					money.String(x.TotalExcludingTax, c), money.String(x.Tax, c), money.String(x.Total, c), money.String(x.CreditApplied, c),
					money.String(x.AmountDue, c), money.String(x.AmountPaid, c), money.String(x.AmountRefunded, c), money.String(x.AmountCredited, c),
					rfc3339(x.CreatedAt), rfc3339p(x.FinalizedAt), rfc3339p(x.PaidAt), rfc3339p(x.VoidedAt)}); err != nil {
					return err
				}
				afterTime, afterID = x.CreatedAt, x.ID
			}
			n = len(rows)
		case ExportAttempts:
			var rows []store.ExportAttemptsRow
			rows, err = q.ExportAttempts(ctx, store.ExportAttemptsParams{Since: r.From, Until: r.To, AfterTime: afterTime, AfterID: afterID, Max: exportPage})
			for _, x := range rows {
				c := x.Currency
				if err = emit([]string{x.ID, x.InvoiceID, x.CustomerID, deref(x.BillingKeyID), x.Gateway, x.OrderID, strconv.Itoa(int(x.Seq)),
					x.Status, money.String(x.Amount, c), c, money.String(x.AmountRefunded, c), deref(x.DeclineCode), deref(x.DeclineClass),
					strconv.FormatBool(x.Backup), deref(x.OfflineReference), rfc3339(x.CreatedAt), rfc3339p(x.ResolvedAt)}); err != nil {
					return err
				}
				afterTime, afterID = x.CreatedAt, x.ID
			}
			n = len(rows)
		case ExportCreditNotes:
			var rows []store.ExportCreditNotesRow
			rows, err = q.ExportCreditNotes(ctx, store.ExportCreditNotesParams{Since: r.From, Until: r.To, AfterTime: afterTime, AfterID: afterID, Max: exportPage})
			for _, x := range rows {
				c := x.Currency
				if err = emit([]string{x.ID, x.Number, x.CustomerID, x.InvoiceID, c, money.String(x.Amount, c), x.Method, x.Status,
					x.Origin, x.Reason, rfc3339(x.CreatedAt), rfc3339p(x.IssuedAt), rfc3339p(x.VoidedAt)}); err != nil {
					return err
				}
				afterTime, afterID = x.CreatedAt, x.ID
			}
			n = len(rows)
		}
		if err != nil {
			return fmt.Errorf("export %s: %w", kind, err)
		}
		if n < exportPage {
			return nil
		}
	}
}
