-- +goose Up
-- Processed inbox rows are deleted after BILLING_WEBHOOK_RETENTION (issue 16.11: an unsigned webhook
-- endpoint must not grow a table forever). The expiry job reads processed rows oldest first; receipt
-- inserts unprocessed rows, which this partial index leaves out, so receipt writes no more than before.
CREATE INDEX webhook_inbox_processed ON webhook_inbox (processed_at) WHERE processed_at IS NOT NULL;

-- +goose Down
DROP INDEX webhook_inbox_processed;
