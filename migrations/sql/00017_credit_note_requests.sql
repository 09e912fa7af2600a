-- +goose Up
-- The request that made a credit note, as subscription_creations (00006): written in the transaction that
-- records the credit note (and, for a refund to the card, the refund row), so a retry of
-- POST /v1/invoices/{id}/refunds with the same Idempotency-Key after a crash answers with that credit note
-- (its refund settled by a lookup) instead of 409 idempotency_key_interrupted or a second refund. The same
-- key with another body is refused. Rows older than the key retention (24 h) are forgotten and replaced.
CREATE TABLE credit_note_requests (
    idem_key       bytea PRIMARY KEY,
    request_hash   bytea NOT NULL,
    credit_note_id text NOT NULL UNIQUE REFERENCES credit_notes (id),
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE credit_note_requests;
