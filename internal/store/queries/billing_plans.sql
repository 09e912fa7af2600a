-- name: CreatePlan :one
INSERT INTO plans (id, code, name, amount, currency, interval, interval_count, trial_days, gateway, dunning_policy, created_at, tax_rate_id,
                   renewal_notice_days, trial_end_notice_days)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
RETURNING *;

-- name: GetPlan :one
SELECT * FROM plans WHERE id = $1;

-- name: GetPlanByCode :one
SELECT * FROM plans WHERE code = $1;

-- name: ListPlans :many
SELECT * FROM plans
WHERE (NOT @has_cursor::boolean OR (created_at, id) > (@after_time::timestamptz, @after_id::text))
ORDER BY created_at, id
LIMIT $1;
