-- name: FindAPIKeyByHash :one
SELECT id, role FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL;

-- name: CreateAPIKey :exec
INSERT INTO api_keys (id, name, role, token_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6);

-- name: ListAPIKeys :many
SELECT id, name, role, prefix, created_at, revoked_at FROM api_keys ORDER BY created_at;
