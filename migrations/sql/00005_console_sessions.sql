-- +goose Up
-- Support console sign-ins (docs/console.md). The cookie holds a random session id; only its SHA-256 is
-- stored, and never the API token the person signed in with: the row keeps what the token resolved to
-- (key id, role, scope) until it expires or the person signs out.
CREATE TABLE console_sessions (
    id_hash    bytea PRIMARY KEY,
    key_id     text NOT NULL,
    role       text NOT NULL CHECK (role IN ('support', 'admin')),
    scope      text NOT NULL,
    -- every state-changing form carries it; a POST without it changes nothing
    csrf_token text NOT NULL,
    -- the result of the last action, shown once on the next page
    flash_kind text,
    flash      text,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
-- Sign-in reaps expired sessions by this index.
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- The overview's 30-day recovery rate starts from the times subscriptions entered past_due: a small partial
-- index, so the outbox's other events cost it nothing.
CREATE INDEX events_past_due_entered ON events (occurred_at) WHERE type = 'subscription.past_due';

-- +goose Down
DROP INDEX events_past_due_entered;
DROP TABLE console_sessions;
