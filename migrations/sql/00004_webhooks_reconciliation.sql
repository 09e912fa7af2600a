-- +goose Up
-- Inbound webhooks and daily reconciliation (docs/webhooks.md, docs/reconciliation.md).

-- The inbox sweep finds rows whose processing job was lost; only unprocessed rows are ever looked at.
CREATE INDEX webhook_inbox_unprocessed ON webhook_inbox (received_at) WHERE processed_at IS NULL;

-- Reconciliation reads one gateway's charges of one day, and the webhook-silence check one gateway's
-- charges of the last hour: both are ranges of (gateway, created_at).
CREATE INDEX payment_attempts_gateway_created ON payment_attempts (gateway, created_at);

-- Who resolved a finding and why (the audit log has it too; the list shows it without a join).
ALTER TABLE reconciliation_findings
    ADD COLUMN resolved_by       text,
    ADD COLUMN resolution_reason text;
-- The support list: by status, oldest first, paged by (created_at, id).
CREATE INDEX reconciliation_findings_status ON reconciliation_findings (status, created_at, id);
-- One run per (gateway, window) finishes; the daily job asks whether it already ran.
CREATE INDEX reconciliation_runs_window ON reconciliation_runs (gateway, window_from, window_to);

-- +goose Down
DROP INDEX reconciliation_runs_window;
DROP INDEX reconciliation_findings_status;
ALTER TABLE reconciliation_findings DROP COLUMN resolution_reason, DROP COLUMN resolved_by;
DROP INDEX payment_attempts_gateway_created;
DROP INDEX webhook_inbox_unprocessed;
