-- name: InsertMail :exec
-- One email owed for one event: inserted in the event's own transaction. The unique (event_id, kind)
-- makes a second insert for the same pair a no-op.
INSERT INTO mail_outbox (event_id, kind, customer_id, subscription_id, invoice_id, data, status, attempts,
                         next_attempt_at, occurred_at, created_at, updated_at)
VALUES (@event_id, @kind, sqlc.narg(customer_id), sqlc.narg(subscription_id), sqlc.narg(invoice_id), @data,
        'queued', 0, @now::timestamptz, @occurred_at, @now::timestamptz, @now::timestamptz)
ON CONFLICT (event_id, kind) DO NOTHING;

-- name: InsertMails :exec
-- InsertMail for many emails in one statement: the emails a batch of renewals owes, inserted in the
-- batch's transaction. An empty reference is no reference.
INSERT INTO mail_outbox (event_id, kind, customer_id, subscription_id, invoice_id, data, status, attempts,
                         next_attempt_at, occurred_at, created_at, updated_at)
SELECT u.event_id, u.kind, nullif(u.customer_id, ''), nullif(u.subscription_id, ''), nullif(u.invoice_id, ''), u.data::jsonb,
       'queued', 0, @now::timestamptz, u.occurred_at, @now::timestamptz, @now::timestamptz
FROM (SELECT unnest(@event_ids::text[]) AS event_id, unnest(@kinds::text[]) AS kind, unnest(@customer_ids::text[]) AS customer_id,
             unnest(@subscription_ids::text[]) AS subscription_id, unnest(@invoice_ids::text[]) AS invoice_id,
             unnest(@datas::text[]) AS data, unnest(@occurred_ats::timestamptz[]) AS occurred_at) AS u
ON CONFLICT (event_id, kind) DO NOTHING;

-- name: DueMail :many
-- Rows owed an attempt: queued and due, or left 'sending' past their lease (the sender died).
SELECT id, attempts FROM mail_outbox
WHERE status IN ('queued', 'sending') AND next_attempt_at <= @now::timestamptz
ORDER BY next_attempt_at, id
LIMIT @max;

-- name: GetMail :one
SELECT * FROM mail_outbox WHERE id = $1;

-- name: ClaimMail :one
-- Takes a row for attempt number prev_attempts+1: only the sender whose ticket matches the attempt count and
-- finds the row queued (or its lease expired) gets it. The lease (next_attempt_at) outlasts the send.
UPDATE mail_outbox
SET status = 'sending', attempts = attempts + 1, next_attempt_at = @lease_until::timestamptz,
    message_id = @message_id::text, updated_at = @now::timestamptz
WHERE id = @id AND attempts = @prev_attempts::int
  AND (status = 'queued' OR status = 'sending')
  AND next_attempt_at <= @now::timestamptz
RETURNING *;

-- name: SetMailEnvelope :exec
UPDATE mail_outbox SET recipient = @recipient, subject = @subject
WHERE id = @id AND status = 'sending' AND attempts = @attempts;

-- name: RecordMail :execrows
-- The outcome of attempt @attempts, compare-and-set on the claim. A success keeps the last failure's
-- code and error (support sees "sent after a 451").
UPDATE mail_outbox
SET status = @status, next_attempt_at = sqlc.narg(next_attempt_at), last_code = coalesce(sqlc.narg(last_code), last_code),
    last_error = coalesce(sqlc.narg(last_error), last_error), sent_at = sqlc.narg(sent_at), updated_at = @now::timestamptz
WHERE id = @id AND status = 'sending' AND attempts = @attempts;

-- name: CustomerMail :many
-- A customer's most recent emails, newest first (the console's timeline): a backward scan of
-- mail_outbox_customer.
SELECT id, event_id, kind, subscription_id, invoice_id, status, attempts, next_attempt_at, message_id,
       recipient, subject, last_code, last_error, occurred_at, created_at, sent_at
FROM mail_outbox WHERE customer_id = @customer_id
ORDER BY occurred_at DESC, id DESC
LIMIT @max;

-- name: EventMail :many
-- The emails one event produced (tests and support: "did the customer get told?").
SELECT * FROM mail_outbox WHERE event_id = $1 ORDER BY id;
