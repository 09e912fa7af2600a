-- name: CreateSession :exec
INSERT INTO console_sessions (id_hash, key_id, role, scope, csrf_token, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: GetSession :one
SELECT id_hash, key_id, role, scope, csrf_token, flash_kind, flash, created_at, expires_at
FROM console_sessions WHERE id_hash = $1 AND expires_at > @now;

-- name: SetFlash :exec
UPDATE console_sessions SET flash_kind = @kind, flash = @message WHERE id_hash = @id_hash;

-- name: ClearFlash :exec
UPDATE console_sessions SET flash_kind = NULL, flash = NULL WHERE id_hash = $1;

-- name: DeleteSession :exec
DELETE FROM console_sessions WHERE id_hash = $1;

-- name: ReapSessions :execrows
DELETE FROM console_sessions WHERE expires_at <= @now;
