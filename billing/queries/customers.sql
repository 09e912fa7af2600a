-- name: CreateCustomer :one
INSERT INTO customers (id, external_id, email, name, created_at) VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- name: GetCustomer :one
SELECT * FROM customers WHERE id = $1;
