-- +goose Up
-- The webhook fan-out's position in the events outbox. One row per consumer ('webhooks'); replicas take
-- it FOR UPDATE SKIP LOCKED, so only one fan-out runs at a time and the cursor moves in one transaction
-- with the deliveries it creates.
--
-- events.seq is a bigserial: numbers are handed out when a transaction inserts, not when it commits, so a
-- later seq can be visible before an earlier one (or the earlier one never appears: its transaction rolled
-- back). The cursor never passes a missing seq until it knows the seq can no longer commit: it remembers
-- the first missing seq, the snapshot taken just after it was seen (gap_snapshot, pg_snapshot as text) and
-- when (gap_seen_at); once every transaction in progress in that snapshot has ended and a short grace has
-- passed, a still-missing seq was rolled back and is skipped (see docs/notifications.md).
CREATE TABLE notify_cursor (
    name         text PRIMARY KEY,
    seq          bigint NOT NULL,
    gap_seq      bigint,
    gap_snapshot text,
    gap_seen_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- Endpoints only receive events written after they were registered, and none exist yet: start at the end.
INSERT INTO notify_cursor (name, seq) SELECT 'webhooks', coalesce(max(seq), 0) FROM events;

-- An endpoint's delivery history, in the order the API lists it.
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at, id);
-- Enabled endpoints, listed in creation order.
CREATE INDEX webhook_endpoints_enabled ON webhook_endpoints (created_at, id) WHERE status = 'enabled';

-- +goose Down
DROP INDEX webhook_endpoints_enabled;
DROP INDEX webhook_deliveries_endpoint;
DROP TABLE notify_cursor;
