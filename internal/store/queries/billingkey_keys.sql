-- name: DefaultKey :one
SELECT * FROM billing_keys WHERE customer_id = $1 AND is_default;

-- name: InsertKey :one
INSERT INTO billing_keys (id, customer_id, gateway, customer_key, ciphertext, key_version, card_brand, masked_number,
                          status, is_default, created_at)
VALUES (@id, @customer_id, @gateway, @customer_key, @ciphertext, @key_version, @card_brand, @masked_number,
        'active', @is_default, @created_at)
RETURNING *;

-- name: ClearDefault :exec
UPDATE billing_keys SET is_default = false WHERE customer_id = $1 AND is_default;

-- name: SetDefault :one
UPDATE billing_keys SET is_default = true WHERE id = $1 RETURNING *;

-- name: CustomerKeyForUpdate :one
SELECT * FROM billing_keys WHERE id = $1 AND customer_id = $2 FOR UPDATE;

-- name: CustomerKey :one
SELECT * FROM billing_keys WHERE id = $1 AND customer_id = $2;

-- name: ListKeys :many
SELECT * FROM billing_keys
WHERE customer_id = @customer_id
  AND (NOT @has_cursor::boolean OR (created_at, id) > (@after_time::timestamptz, @after_id::text))
ORDER BY created_at, id
LIMIT @lim;

-- name: RevokeKey :one
UPDATE billing_keys SET status = 'revoked', is_default = false, revoked_at = @revoked_at
WHERE id = @id
RETURNING *;

-- name: ChargeableKey :one
SELECT id, gateway, customer_key FROM billing_keys
WHERE customer_id = $1 AND is_default AND status = 'active' AND hard_declined_at IS NULL;

-- name: KeySecret :one
SELECT id, customer_id, customer_key, status, ciphertext, key_version FROM billing_keys WHERE id = $1;

-- name: MarkHardDeclined :execrows
-- The first hard decline is kept: a later one on the same key says nothing new.
UPDATE billing_keys SET hard_declined_at = @at, hard_decline_code = @code
WHERE id = @id AND hard_declined_at IS NULL;

-- name: KeyExists :one
SELECT EXISTS (SELECT 1 FROM billing_keys WHERE id = $1);

-- name: StaleKeysForUpdate :many
-- SKIP LOCKED lets rotation run beside live traffic and beside a second rotator without waiting on either.
SELECT id, customer_id, ciphertext, key_version FROM billing_keys
WHERE key_version < @current_version AND ciphertext IS NOT NULL
ORDER BY id
LIMIT @lim
FOR UPDATE SKIP LOCKED;

-- name: Reencrypt :exec
UPDATE billing_keys SET ciphertext = @ciphertext, key_version = @key_version WHERE id = @id;

-- name: RecordKeyIssue :execrows
-- As RecordSubscriptionCreation: a forgotten (older than the retention) row is replaced, a live one kept.
INSERT INTO billing_key_issues (idem_key, request_hash, billing_key_id) VALUES (@idem_key, @request_hash, @billing_key_id)
ON CONFLICT (idem_key) DO UPDATE SET request_hash = EXCLUDED.request_hash, billing_key_id = EXCLUDED.billing_key_id,
    created_at = now()
WHERE billing_key_issues.created_at <= now() - make_interval(hours => @retention_hours::int);

-- name: KeyByIssue :one
SELECT i.request_hash, i.billing_key_id FROM billing_key_issues i
WHERE i.idem_key = @idem_key AND i.created_at > now() - make_interval(hours => @retention_hours::int);

-- name: KeyByID :one
SELECT * FROM billing_keys WHERE id = $1;

-- name: BackupKey :one
-- The customer's backup card, if it may be charged: active, not the default, never hard-declined.
SELECT id, gateway, customer_key, card_brand FROM billing_keys
WHERE customer_id = $1 AND is_backup AND NOT is_default AND status = 'active' AND hard_declined_at IS NULL;

-- name: ClearBackup :exec
UPDATE billing_keys SET is_backup = false WHERE customer_id = $1 AND is_backup;

-- name: SetBackup :one
UPDATE billing_keys SET is_backup = true WHERE id = $1 RETURNING *;

-- name: KeyCard :one
SELECT card_brand, masked_number FROM billing_keys WHERE id = $1;

-- name: ChargeableKeys :many
-- ChargeableKey for many customers at once (billing's batch renewals).
SELECT customer_id, id, gateway, customer_key FROM billing_keys
WHERE customer_id = ANY(@customer_ids::text[]) AND is_default AND status = 'active' AND hard_declined_at IS NULL;

-- name: KeySecrets :many
SELECT id, customer_id, customer_key, status, ciphertext, key_version FROM billing_keys WHERE id = ANY(@ids::text[]);

-- name: KeyForGatewayDelete :one
SELECT id, customer_id, gateway, customer_key, status, ciphertext, key_version, gateway_deleted_at
FROM billing_keys WHERE id = $1;

-- name: MarkGatewayDeleted :execrows
-- The gateway confirmed the deletion: the ciphertext is destroyed, nothing can decrypt the key again.
UPDATE billing_keys SET gateway_deleted_at = @deleted_at, ciphertext = NULL
WHERE id = @id AND status = 'revoked' AND gateway_deleted_at IS NULL;

-- name: GatewayDeletesOwed :many
-- Revoked keys the gateway has not confirmed deleted yet, oldest revocation first.
SELECT id FROM billing_keys
WHERE status = 'revoked' AND gateway_deleted_at IS NULL
ORDER BY revoked_at, id
LIMIT @lim;
