-- +goose Up
-- Receiving a webhook is one INSERT and a 200 (issue 16): the processing job is no longer enqueued on the
-- request path but by a dispatcher that claims new inbox rows in batches. dispatched_at is when a row's
-- job was enqueued; NULL means nobody has enqueued it yet.
ALTER TABLE webhook_inbox ADD COLUMN dispatched_at timestamptz;
-- Rows stored before this migration had their job enqueued in the same transaction.
UPDATE webhook_inbox SET dispatched_at = received_at;
-- The dispatcher's claim reads only rows not yet dispatched, oldest first.
CREATE INDEX webhook_inbox_undispatched ON webhook_inbox (received_at) WHERE dispatched_at IS NULL;

-- +goose Down
DROP INDEX webhook_inbox_undispatched;
ALTER TABLE webhook_inbox DROP COLUMN dispatched_at;
