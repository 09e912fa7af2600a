-- name: FindAPIKeyByHash :one
SELECT id, role FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL;

-- name: CreateAPIKey :exec
INSERT INTO api_keys (id, name, role, token_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6);

-- name: ListAPIKeys :many
SELECT id, name, role, prefix, created_at, revoked_at FROM api_keys ORDER BY created_at;

-- name: ListAPIKeysPage :many
SELECT id, name, role, prefix, created_at, revoked_at FROM api_keys
WHERE (NOT @has_cursor::boolean OR (created_at, id) > (@after_time::timestamptz, @after_id::text))
ORDER BY created_at, id
LIMIT @max;

-- name: LockAPIKey :one
SELECT id, name, role, prefix, created_at, revoked_at FROM api_keys WHERE id = $1 FOR UPDATE;

-- name: RevokeAPIKey :one
-- Authentication reads revoked_at on every request, on every replica: the key stops working when this commits.
UPDATE api_keys SET revoked_at = @now WHERE id = @id AND revoked_at IS NULL
RETURNING id, name, role, prefix, created_at, revoked_at;

-- name: APIKeyActive :one
SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = $1 AND revoked_at IS NULL);
