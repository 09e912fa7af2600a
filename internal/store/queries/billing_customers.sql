-- name: CreateCustomer :one
INSERT INTO customers (id, external_id, email, name, locale, created_at) VALUES ($1, $2, $3, $4, @locale, $5)
RETURNING *;

-- name: GetCustomer :one
SELECT * FROM customers WHERE id = $1;

-- name: CustomerDelinquency :one
-- The worst delinquency among the customer's subscriptions (suspended/unpaid over past_due) and since when.
SELECT
    coalesce(max(CASE status WHEN 'unpaid' THEN 3 WHEN 'suspended' THEN 2 WHEN 'past_due' THEN 1 ELSE 0 END), 0)::int AS severity,
    min(past_due_since) FILTER (WHERE status IN ('past_due', 'suspended', 'unpaid')) AS since
FROM subscriptions WHERE customer_id = $1;

-- name: CustomerAmountsDue :many
SELECT currency, sum(amount_due)::numeric AS amount
FROM invoices WHERE customer_id = $1 AND status IN ('open', 'uncollectible') AND amount_due > 0
GROUP BY currency ORDER BY currency;

-- name: GetCustomerByExternalID :one
SELECT * FROM customers WHERE external_id = $1;

-- name: CustomerExists :one
SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1);

-- name: LockCustomer :one
-- Serializes changes per customer (billingkey locks it so two concurrent first keys cannot both, or
-- neither, become default).
SELECT id FROM customers WHERE id = $1 FOR UPDATE;
