-- +goose Up
-- Dunning that learns (docs/dunning.md): the customer's time zone for retry hours, a backup card, and
-- per-customer dunning overrides.

-- The customer's IANA time zone; NULL means the policy's (KST by default).
ALTER TABLE customers ADD COLUMN time_zone text;

-- One backup card per customer, charged once per invoice when the policy allows it.
ALTER TABLE billing_keys ADD COLUMN is_backup boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX billing_keys_one_backup ON billing_keys (customer_id) WHERE is_backup;

-- Fence: at most one attempt on the backup card per invoice, however often a job or a replica runs.
ALTER TABLE payment_attempts ADD COLUMN backup boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX payment_attempts_one_backup ON payment_attempts (invoice_id) WHERE backup;

-- The invoice's next attempt goes to the backup card (set by the dunning decision that allowed it).
ALTER TABLE invoices ADD COLUMN backup_due boolean NOT NULL DEFAULT false;

-- Support's per-customer override: exempt from dunning, or a policy of the customer's own (a JSON
-- document read over the plan's policy). Every change is in audit_log; the row keeps who and why for the
-- console's "which policy applies and why".
CREATE TABLE dunning_overrides (
    customer_id text PRIMARY KEY REFERENCES customers (id),
    mode        text NOT NULL CHECK (mode IN ('exempt', 'policy')),
    policy      jsonb,
    reason      text NOT NULL,
    set_by      text NOT NULL,
    set_at      timestamptz NOT NULL,
    CHECK ((mode = 'policy') = (policy IS NOT NULL))
);

-- Analytics read attempts by the time they were made.
CREATE INDEX payment_attempts_created ON payment_attempts (created_at);

-- +goose Down
DROP INDEX payment_attempts_created;
DROP TABLE dunning_overrides;
ALTER TABLE invoices DROP COLUMN backup_due;
DROP INDEX payment_attempts_one_backup;
ALTER TABLE payment_attempts DROP COLUMN backup;
DROP INDEX billing_keys_one_backup;
ALTER TABLE billing_keys DROP COLUMN is_backup;
ALTER TABLE customers DROP COLUMN time_zone;
