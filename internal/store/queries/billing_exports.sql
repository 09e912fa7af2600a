-- The accountants' CSV exports (billing/exports.go): one range of creation times, read in pages by
-- (created_at, id) so a long export never holds more than a page in memory.

-- name: ExportInvoices :many
SELECT id, number, customer_id, subscription_id, kind, status, currency, period_start, period_end, subtotal,
       total_discount, total_excluding_tax, tax, total, credit_applied, amount_due, amount_paid, amount_refunded,
       amount_credited, created_at, finalized_at, paid_at, voided_at
FROM invoices
WHERE created_at >= @since AND created_at < @until AND (created_at, id) > (@after_time::timestamptz, @after_id::text)
ORDER BY created_at, id
LIMIT @max;

-- name: ExportAttempts :many
SELECT id, invoice_id, customer_id, billing_key_id, gateway, order_id, seq, status, amount, currency, amount_refunded,
       decline_code, decline_class, backup, offline_reference, created_at, resolved_at
FROM payment_attempts
WHERE created_at >= @since AND created_at < @until AND (created_at, id) > (@after_time::timestamptz, @after_id::text)
ORDER BY created_at, id
LIMIT @max;

-- name: ExportCreditNotes :many
SELECT id, number, customer_id, invoice_id, currency, amount, method, status, origin, reason, created_at, issued_at, voided_at
FROM credit_notes
WHERE created_at >= @since AND created_at < @until AND (created_at, id) > (@after_time::timestamptz, @after_id::text)
ORDER BY created_at, id
LIMIT @max;
