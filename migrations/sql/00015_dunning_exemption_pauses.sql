-- +goose Up
-- The dunning pauses a customer's exemption made (docs/dunning.md, "Per-customer overrides"): setting the
-- exemption pauses the customer's delinquent subscriptions, and a renewal that fails while it holds goes
-- past_due already paused. Lifting the exemption resumes these pauses, and only these: a pause support set by
-- hand stays. paused_at is the pause's start, so a pause that was since replaced (resumed and paused again
-- by hand, or given an end) is told apart from the exemption's own.
CREATE TABLE dunning_exemption_pauses (
    subscription_id text PRIMARY KEY REFERENCES subscriptions (id),
    customer_id     text NOT NULL REFERENCES customers (id),
    paused_at       timestamptz NOT NULL
);
CREATE INDEX dunning_exemption_pauses_customer ON dunning_exemption_pauses (customer_id);

-- +goose Down
DROP TABLE dunning_exemption_pauses;
