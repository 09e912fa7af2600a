-- +goose Up
-- The request that created a subscription, by its idempotency fingerprint (a SHA-256 of the API token's
-- scope, the Idempotency-Key and the request's hash), written in the creation's own transaction. A re-run
-- of that request — the process that ran it was killed before its answer was stored — finds the
-- subscription instead of opening and charging a second one (docs/idempotency.md).
CREATE TABLE subscription_creations (
    fingerprint     bytea PRIMARY KEY,
    subscription_id text NOT NULL UNIQUE REFERENCES subscriptions (id),
    created_at      timestamptz NOT NULL
);

-- +goose Down
DROP TABLE subscription_creations;
