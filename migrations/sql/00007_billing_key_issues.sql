-- +goose Up
-- The request that issued a billing key, as subscription_creations: written in the transaction that stores
-- the key, so a re-run of that request after a crash answers with that key instead of storing a second
-- copy of the card.
CREATE TABLE billing_key_issues (
    idem_key       bytea PRIMARY KEY,
    request_hash   bytea NOT NULL,
    billing_key_id text NOT NULL UNIQUE REFERENCES billing_keys (id),
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE billing_key_issues;
