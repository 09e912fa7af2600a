-- name: CreateCreditNote :one
INSERT INTO credit_notes (id, number, customer_id, invoice_id, currency, amount, reason, method, status, origin,
    created_by, created_at, issued_at)
VALUES (@id, @number, @customer_id, @invoice_id, @currency, @amount, @reason, @method, @status, @origin,
    @created_by, @created_at, sqlc.narg(issued_at))
RETURNING *;

-- name: AddCreditNoteLine :exec
INSERT INTO credit_note_lines (credit_note_id, description, amount) VALUES (@credit_note_id, @description, @amount);

-- name: SetCreditNoteStatus :one
UPDATE credit_notes SET status = @status, issued_at = sqlc.narg(issued_at), voided_at = sqlc.narg(voided_at)
WHERE id = @id AND status = 'pending'
RETURNING *;

-- name: GetCreditNote :one
SELECT * FROM credit_notes WHERE id = $1;

-- name: CreditNoteLines :many
SELECT * FROM credit_note_lines WHERE credit_note_id = $1 ORDER BY id;

-- name: ListCreditNotes :many
SELECT * FROM credit_notes
WHERE (sqlc.narg(customer_id)::text IS NULL OR customer_id = sqlc.narg(customer_id))
  AND (sqlc.narg(invoice_id)::text IS NULL OR invoice_id = sqlc.narg(invoice_id))
  AND (NOT @has_cursor::boolean OR (created_at, id) > (@after_time::timestamptz, @after_id::text))
ORDER BY created_at, id
LIMIT @max;

-- name: CreateRefund :one
INSERT INTO refunds (id, credit_note_id, invoice_id, attempt_id, customer_id, gateway, payment_key, amount, currency,
    reason, status, origin, idempotency_key, gateway_refund_id, next_lookup_at, created_at, resolved_at)
VALUES (@id, @credit_note_id, @invoice_id, @attempt_id, @customer_id, @gateway, @payment_key, @amount, @currency,
    @reason, @status, @origin, @idempotency_key, sqlc.narg(gateway_refund_id), sqlc.narg(next_lookup_at), @created_at,
    sqlc.narg(resolved_at))
RETURNING *;

-- name: GetRefund :one
SELECT * FROM refunds WHERE id = $1;

-- name: LockRefund :one
SELECT * FROM refunds WHERE id = $1 FOR UPDATE;

-- name: RefundForCreditNote :one
SELECT * FROM refunds WHERE credit_note_id = $1;

-- name: RefundsForAttempt :many
SELECT * FROM refunds WHERE attempt_id = $1 ORDER BY created_at, id;

-- name: MarkRefundSent :exec
UPDATE refunds SET send_count = send_count + 1, sent_at = coalesce(sent_at, @sent_at) WHERE id = @id;

-- name: ResolveRefund :one
-- Compare-and-set on the status it was read in: two resolvers racing record one outcome.
UPDATE refunds SET status = @status, gateway_refund_id = coalesce(sqlc.narg(gateway_refund_id), gateway_refund_id),
    failure_code = sqlc.narg(failure_code), failure_reason = sqlc.narg(failure_reason), lookup_count = @lookup_count,
    next_lookup_at = sqlc.narg(next_lookup_at), resolved_at = sqlc.narg(resolved_at)
WHERE id = @id AND status = @from_status
RETURNING *;

-- name: InvoiceRefundsHeld :one
-- What an invoice's credit notes have given back or hold on the way back (pending and unknown refunds
-- included, failed ones not): the part of amount_paid that is no longer refundable.
SELECT coalesce(sum(amount), 0)::numeric AS held FROM credit_notes
WHERE invoice_id = @invoice_id AND method IN ('refund', 'customer_balance') AND status IN ('pending', 'issued');

-- name: AttemptRefundsHeld :one
SELECT coalesce(sum(amount), 0)::numeric AS held FROM refunds
WHERE attempt_id = @attempt_id AND status IN ('pending', 'unknown', 'succeeded');

-- name: RefundableAttempts :many
-- The invoice's payments at a gateway that kept money, newest first.
SELECT * FROM payment_attempts
WHERE invoice_id = @invoice_id AND status = 'succeeded' AND gateway_payment_key IS NOT NULL AND amount_refunded < amount
ORDER BY created_at DESC, seq DESC;

-- name: AddAttemptRefunded :one
UPDATE payment_attempts SET amount_refunded = amount_refunded + @amount WHERE id = @id RETURNING *;

-- name: AddInvoiceRefunded :one
UPDATE invoices SET amount_refunded = amount_refunded + @amount, version = version + 1 WHERE id = @id RETURNING *;

-- name: CreditOpenInvoice :one
-- A credit note on an open invoice: less is due, and what it took off is amount_credited.
UPDATE invoices SET amount_due = amount_due - @amount, amount_credited = amount_credited + @amount, version = version + 1
WHERE id = @id AND status = 'open' AND amount_due >= @amount
RETURNING *;

-- name: DueRefundLookups :many
SELECT id, next_lookup_at::timestamptz AS due_at FROM refunds
WHERE status IN ('pending', 'unknown') AND next_lookup_at <= @now
ORDER BY next_lookup_at LIMIT @max;

-- name: AttemptByPaymentKey :one
SELECT * FROM payment_attempts WHERE gateway = @gateway AND gateway_payment_key = @payment_key
ORDER BY created_at DESC LIMIT 1;

-- name: RecordCreditNoteRequest :execrows
-- As RecordSubscriptionCreation: a forgotten (older than the retention) row is replaced, a live one kept (0
-- rows: the same key was recorded first by another run).
INSERT INTO credit_note_requests (idem_key, request_hash, credit_note_id) VALUES (@idem_key, @request_hash, @credit_note_id)
ON CONFLICT (idem_key) DO UPDATE SET request_hash = EXCLUDED.request_hash, credit_note_id = EXCLUDED.credit_note_id,
    created_at = now()
WHERE credit_note_requests.created_at <= now() - make_interval(hours => @retention_hours::int);

-- name: CreditNoteByRequest :one
SELECT r.request_hash, r.credit_note_id FROM credit_note_requests r
WHERE r.idem_key = @idem_key AND r.created_at > now() - make_interval(hours => @retention_hours::int);
