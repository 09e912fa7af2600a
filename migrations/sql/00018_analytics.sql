-- +goose Up
-- Analytics and accountants' exports (docs/analytics.md). Each index serves one range read, so a 90-day
-- figure reads 90 days of rows and not the whole history.

-- Recovery: invoices by the time their first charge failed (the at-risk cohorts).
CREATE INDEX invoices_first_failed ON invoices (first_failed_at) WHERE first_failed_at IS NOT NULL;
-- Recovered revenue per period: at-risk invoices by the time they were paid.
CREATE INDEX invoices_recovered_paid ON invoices (paid_at) WHERE first_failed_at IS NOT NULL AND paid_at IS NOT NULL;
-- MRR and the churn base: the recurring invoices whose service period reaches into the range.
CREATE INDEX invoices_recurring_period ON invoices (period_end) WHERE kind IN ('initial', 'renewal');
-- Involuntary churn: the dunning final actions (and every cancel, which the query narrows), by time.
CREATE INDEX events_churn ON events (occurred_at) WHERE type IN ('subscription.canceled', 'subscription.unpaid');
-- The invoices export, in creation order, paged by (created_at, id).
CREATE INDEX invoices_created ON invoices (created_at, id);

-- +goose Down
DROP INDEX invoices_created;
DROP INDEX events_churn;
DROP INDEX invoices_recurring_period;
DROP INDEX invoices_recovered_paid;
DROP INDEX invoices_first_failed;
