-- +goose Up
-- Webhook-prompted lookups are coalesced per order (issue 16.11): many events for one order within a
-- window cost one lookup at the gateway. webhook_lookup_at is when a webhook last made us look the
-- attempt's order up (wall clock: the window protects the gateway from real load, like the breaker).
ALTER TABLE payment_attempts ADD COLUMN webhook_lookup_at timestamptz;
-- The lookup covers every event of the order stored before it started: they are found by order.
CREATE INDEX webhook_inbox_order_unprocessed ON webhook_inbox (gateway, order_id) WHERE processed_at IS NULL;

-- +goose Down
DROP INDEX webhook_inbox_order_unprocessed;
ALTER TABLE payment_attempts DROP COLUMN webhook_lookup_at;
