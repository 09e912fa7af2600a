-- Batch renewals (billing/batch.go): a batch of due subscriptions is claimed and renewed with one statement
-- per table, and the outcomes of its charges are recorded a group at a time. Each statement takes arrays
-- (unnest), so a batch pays a statement's start, its round trip and a commit once, not once per renewal.

-- name: ClaimDueRenewals :many
-- The oldest due subscriptions, locked. Rows another batch (or a single renewal) holds are skipped, so
-- concurrent batches on any number of replicas never overlap. Index range scan on subscriptions_due.
SELECT * FROM subscriptions
WHERE next_renewal_at <= @now AND status IN ('active', 'trialing', 'past_due')
ORDER BY next_renewal_at
LIMIT @max
FOR UPDATE SKIP LOCKED;

-- name: PlansByID :many
SELECT * FROM plans WHERE id = ANY(@ids::text[]);

-- name: AccountsWithBalance :many
-- Which of the accounts hold a non-zero balance (by ledger_entries_account).
SELECT DISTINCT account FROM (
    SELECT account FROM ledger_entries WHERE account = ANY(@accounts::text[])
    GROUP BY account, currency HAVING sum(amount) <> 0) AS b;

-- name: AdvanceSubscriptionPeriods :execrows
-- The caller holds every row's lock (ClaimDueRenewals).
UPDATE subscriptions AS s SET current_period_start = u.period_start, current_period_end = u.period_end,
    next_renewal_at = u.period_end, version = s.version + 1, updated_at = @updated_at
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@period_starts::timestamptz[]) AS period_start, unnest(@period_ends::timestamptz[]) AS period_end) AS u
WHERE s.id = u.id;

-- name: InsertFinalizedInvoices :execrows
-- Renewal invoices born finalized, composed (billing.Compose), with their first attempt counted. The
-- (subscription, period) unique index is the fence: a period invoiced already fails the whole batch.
INSERT INTO invoices (id, number, customer_id, subscription_id, kind, status, currency, period_start, period_end,
    subtotal, total, amount_due, total_discount, total_excluding_tax, tax, tax_free, attempt_count, created_at, finalized_at)
SELECT u.id, u.number, u.customer_id, u.subscription_id, @kind::text, @status::text, u.currency, u.period_start, u.period_end,
    u.subtotal, u.total, u.total, u.discount, u.supply_value, u.tax, u.tax_free, 1, @created_at, @created_at
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@numbers::text[]) AS number, unnest(@customer_ids::text[]) AS customer_id,
    unnest(@subscription_ids::text[]) AS subscription_id, unnest(@currencies::text[]) AS currency,
    unnest(@period_starts::timestamptz[]) AS period_start, unnest(@period_ends::timestamptz[]) AS period_end,
    unnest(@subtotals::numeric[]) AS subtotal, unnest(@totals::numeric[]) AS total, unnest(@discounts::numeric[]) AS discount,
    unnest(@supply_values::numeric[]) AS supply_value, unnest(@taxes::numeric[]) AS tax,
    unnest(@tax_frees::numeric[]) AS tax_free) AS u;

-- name: InsertInvoiceLines :exec
-- An empty tax rate id is no tax rate (and then the percentage and inclusive are NULL).
INSERT INTO invoice_lines (invoice_id, description, plan_id, quantity, unit_amount, amount, period_start, period_end,
    discount, tax, tax_rate_id, tax_percentage, tax_inclusive, supply_value, total)
SELECT u.invoice_id, u.description, u.plan_id, u.quantity, u.unit_amount, u.amount, u.period_start, u.period_end,
    u.discount, u.tax, nullif(u.tax_rate_id, ''), CASE WHEN u.tax_rate_id <> '' THEN u.tax_percentage END,
    CASE WHEN u.tax_rate_id <> '' THEN u.tax_inclusive END, u.supply_value, u.total
FROM (SELECT unnest(@invoice_ids::text[]) AS invoice_id, unnest(@descriptions::text[]) AS description,
    unnest(@plan_ids::text[]) AS plan_id, unnest(@quantities::int[]) AS quantity, unnest(@unit_amounts::numeric[]) AS unit_amount,
    unnest(@amounts::numeric[]) AS amount, unnest(@period_starts::timestamptz[]) AS period_start,
    unnest(@period_ends::timestamptz[]) AS period_end, unnest(@discounts::numeric[]) AS discount, unnest(@taxes::numeric[]) AS tax,
    unnest(@tax_rate_ids::text[]) AS tax_rate_id, unnest(@tax_percentages::numeric[]) AS tax_percentage,
    unnest(@tax_inclusives::boolean[]) AS tax_inclusive, unnest(@supply_values::numeric[]) AS supply_value,
    unnest(@line_totals::numeric[]) AS total) AS u;

-- name: CustomerTaxRates :many
-- The customers' own tax rates (taxRateFor: a customer's rate wins over the plan's).
SELECT id, tax_rate_id FROM customers WHERE id = ANY(@ids::text[]) AND tax_rate_id IS NOT NULL;

-- name: TaxRatesByID :many
SELECT * FROM tax_rates WHERE id = ANY(@ids::text[]);

-- name: InsertEvents :exec
-- Events in the order given (seq follows it). An empty reference is no reference.
INSERT INTO events (id, type, customer_id, subscription_id, invoice_id, attempt_id, data, occurred_at)
SELECT u.id, u.type, nullif(u.customer_id, ''), nullif(u.subscription_id, ''), nullif(u.invoice_id, ''),
    nullif(u.attempt_id, ''), u.data::jsonb, @occurred_at
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@types::text[]) AS type, unnest(@customer_ids::text[]) AS customer_id, unnest(@subscription_ids::text[]) AS subscription_id, unnest(@invoice_ids::text[]) AS invoice_id, unnest(@attempt_ids::text[]) AS attempt_id, unnest(@datas::text[]) AS data) AS u
;

-- name: PostLedgerTransactions :execrows
-- Balanced transactions of one kind, one per reference, with their entries (entry_refs name the
-- transaction each entry belongs to). (kind, reference) is unique: a reference posted already fails the
-- statement. The balance trigger checks every transaction at commit, as for one posted alone.
WITH t AS (
    INSERT INTO ledger_transactions (kind, reference, customer_id, description, created_at)
    SELECT @kind::text, u.reference, u.customer_id, u.description, @created_at
    FROM (SELECT unnest(@refs::text[]) AS reference, unnest(@customer_ids::text[]) AS customer_id, unnest(@descriptions::text[]) AS description) AS u
    RETURNING id, reference)
INSERT INTO ledger_entries (transaction_id, account, currency, amount)
SELECT t.id, e.account, e.currency, e.amount
FROM (SELECT unnest(@entry_refs::text[]) AS reference, unnest(@accounts::text[]) AS account, unnest(@currencies::text[]) AS currency, unnest(@amounts::numeric[]) AS amount) AS e
JOIN t ON t.reference = e.reference;

-- name: InsertPendingAttempts :exec
INSERT INTO payment_attempts (id, invoice_id, customer_id, billing_key_id, gateway, seq, order_id, idempotency_key,
    amount, currency, status, next_lookup_at, created_at)
SELECT u.id, u.invoice_id, u.customer_id, u.billing_key_id, u.gateway, 1, u.order_id, u.idempotency_key,
    u.amount, u.currency, 'pending', @next_lookup_at, @created_at
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@invoice_ids::text[]) AS invoice_id, unnest(@customer_ids::text[]) AS customer_id, unnest(@billing_key_ids::text[]) AS billing_key_id, unnest(@gateways::text[]) AS gateway, unnest(@order_ids::text[]) AS order_id, unnest(@idempotency_keys::text[]) AS idempotency_key, unnest(@amounts::numeric[]) AS amount, unnest(@currencies::text[]) AS currency) AS u;

-- name: LockSubscriptionsByID :many
-- Locks in id order: the first of the three steps (subscriptions, invoices, attempts) every writer takes.
SELECT * FROM subscriptions WHERE id = ANY(@ids::text[]) ORDER BY id FOR UPDATE;

-- name: LockInvoicesByID :many
SELECT * FROM invoices WHERE id = ANY(@ids::text[]) ORDER BY id FOR UPDATE;

-- name: LockAttemptsByID :many
SELECT * FROM payment_attempts WHERE id = ANY(@ids::text[]) ORDER BY id FOR UPDATE;

-- name: SucceedPendingAttempts :execrows
UPDATE payment_attempts AS a SET status = 'succeeded', gateway_payment_key = nullif(u.payment_key, ''),
    resolved_at = @resolved_at
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@payment_keys::text[]) AS payment_key) AS u
WHERE a.id = u.id AND a.status = 'pending';

-- name: PayOpenInvoices :execrows
-- Invoices paid in full by one payment each (the caller checked amount = amount_due under the lock).
UPDATE invoices AS i SET status = 'paid', amount_paid = i.amount_paid + u.amount, amount_due = 0,
    next_attempt_at = NULL, paid_at = @paid_at, version = i.version + 1
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@amounts::numeric[]) AS amount) AS u
WHERE i.id = u.id AND i.status = 'open';

-- name: MarkAttemptsSent :exec
-- MarkAttemptSent for a batch's attempts, committed before the first of them is sent.
UPDATE payment_attempts SET send_count = send_count + 1, sent_at = @sent_at WHERE id = ANY(@ids::text[]);

-- name: SubscriptionsWithActiveDiscount :many
-- Which of the subscriptions carry an active coupon (by subscription_discounts_one_active).
SELECT subscription_id FROM subscription_discounts WHERE subscription_id = ANY(@ids::text[]) AND status = 'active';
