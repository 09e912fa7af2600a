-- +goose Up
-- The request that created a subscription, by its Idempotency-Key (idem_key: a SHA-256 of the API token's
-- scope, method, path and key) and its content (request_hash), written in the creation's own transaction.
-- A re-run of that request — the process that ran it was killed before its answer was stored, or it
-- answered 5xx — finds the subscription instead of opening and charging a second one; the same key with
-- another body is refused. Rows older than the key retention (24 h, wall clock) are forgotten and
-- replaced (docs/idempotency.md).
CREATE TABLE subscription_creations (
    idem_key        bytea PRIMARY KEY,
    request_hash    bytea NOT NULL,
    subscription_id text NOT NULL UNIQUE REFERENCES subscriptions (id),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE subscription_creations;
