-- name: CreateTaxRate :one
INSERT INTO tax_rates (id, name, percentage, inclusive, country, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING *;

-- name: GetTaxRate :one
SELECT * FROM tax_rates WHERE id = $1;

-- name: ListTaxRates :many
SELECT * FROM tax_rates
WHERE (NOT @has_cursor::boolean OR (created_at, id) > (@after_time::timestamptz, @after_id::text))
ORDER BY created_at, id
LIMIT @max;

-- name: SetPlanTaxRate :exec
UPDATE plans SET tax_rate_id = $2 WHERE id = $1;

-- name: SetCustomerTaxRate :one
UPDATE customers SET tax_rate_id = $2 WHERE id = $1 RETURNING *;
