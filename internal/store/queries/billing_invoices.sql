-- name: CreateInvoice :one
INSERT INTO invoices (id, customer_id, subscription_id, kind, status, currency, period_start, period_end,
    subtotal, total, amount_due, created_at, total_discount, total_excluding_tax, tax, tax_free, credit_applied)
VALUES (@id, @customer_id, @subscription_id, @kind, 'draft', @currency, @period_start, @period_end,
    @subtotal, @total, @amount_due, @created_at, @total_discount, @total_excluding_tax, @tax, @tax_free, @credit_applied)
ON CONFLICT DO NOTHING
RETURNING *;

-- name: GetInvoiceForPeriod :one
SELECT * FROM invoices WHERE subscription_id = $1 AND period_start = $2 AND kind IN ('initial', 'renewal');

-- name: AddInvoiceLine :exec
INSERT INTO invoice_lines (invoice_id, description, plan_id, quantity, unit_amount, amount, period_start, period_end, proration,
    discount, coupon_id, tax, tax_rate_id, tax_percentage, tax_inclusive, supply_value, total)
VALUES (@invoice_id, @description, @plan_id, @quantity, @unit_amount, @amount, @period_start, @period_end, @proration,
    @discount, @coupon_id, @tax, @tax_rate_id, @tax_percentage, @tax_inclusive, @supply_value, @total);

-- name: GetInvoice :one
SELECT * FROM invoices WHERE id = $1;

-- name: LockInvoice :one
SELECT * FROM invoices WHERE id = $1 FOR UPDATE;

-- name: InvoiceLines :many
SELECT * FROM invoice_lines WHERE invoice_id = $1 ORDER BY id;

-- name: UpdateInvoice :one
UPDATE invoices SET
    status = @status, amount_due = @amount_due, amount_paid = @amount_paid, attempt_count = @attempt_count,
    next_attempt_at = @next_attempt_at, first_failed_at = @first_failed_at,
    finalized_at = @finalized_at, paid_at = @paid_at, voided_at = @voided_at, version = version + 1
WHERE id = @id AND version = @version
RETURNING *;

-- name: ListInvoices :many
SELECT * FROM invoices
WHERE (sqlc.narg(customer_id)::text IS NULL OR customer_id = sqlc.narg(customer_id))
  AND (sqlc.narg(subscription_id)::text IS NULL OR subscription_id = sqlc.narg(subscription_id))
  AND (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status))
  AND (NOT @has_cursor::boolean OR (created_at, id) > (@after_time::timestamptz, @after_id::text))
ORDER BY created_at, id
LIMIT @max;

-- name: OpenInvoicesForSubscription :many
SELECT * FROM invoices WHERE subscription_id = $1 AND status = 'open' ORDER BY created_at, id;

-- name: OpenInvoicesForCustomer :many
SELECT * FROM invoices WHERE customer_id = $1 AND status = 'open' ORDER BY created_at, id;

-- name: DueCollections :many
-- Not while support has paused the subscription's dunning (resuming moves next_attempt_at on).
SELECT id, next_attempt_at::timestamptz AS due_at FROM invoices
WHERE status = 'open' AND next_attempt_at <= @now
  AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.id = invoices.subscription_id AND s.dunning_paused)
ORDER BY next_attempt_at LIMIT @max;

-- name: RetryOpenInvoicesNow :many
-- A new billing key heals: every open invoice of the customer is due for a charge now, except that an
-- invoice whose subscription's dunning is paused is due when the pause began on the dunning clock, which
-- the resume moves to the resume itself (billing/pause.go).
UPDATE invoices SET next_attempt_at = coalesce(
        (SELECT s.dunning_paused_at FROM subscriptions s WHERE s.id = invoices.subscription_id AND s.dunning_paused), @now),
    version = version + 1
WHERE invoices.customer_id = @customer_id AND invoices.status = 'open' AND invoices.amount_due > 0
RETURNING invoices.id;

-- name: HasFailedOpenInvoice :one
SELECT EXISTS (SELECT 1 FROM invoices WHERE customer_id = $1 AND status = 'open' AND first_failed_at IS NOT NULL);

-- name: InitialInvoice :one
SELECT * FROM invoices WHERE subscription_id = $1 AND kind = 'initial' ORDER BY created_at LIMIT 1;
