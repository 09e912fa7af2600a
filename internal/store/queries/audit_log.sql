-- name: InsertAudit :one
INSERT INTO audit_log (at, actor, role, action, target_type, target_id, reason, before, after, request_id, origin)
VALUES (@at, @actor, @role, @action, @target_type, @target_id, @reason, @before, @after, @request_id, @origin)
RETURNING *;

-- Readers are oldest first by id, one query per access path so each plan is an index range scan
-- (audit_log_target, audit_log_actor, the primary key) even as a generic prepared plan.

-- name: ListAuditByTarget :many
SELECT * FROM audit_log
WHERE target_id = @target_id AND id > @after_id
  AND (sqlc.narg(actor)::text IS NULL OR actor = sqlc.narg(actor))
ORDER BY target_id, id
LIMIT @max;

-- name: ListAuditByActor :many
SELECT * FROM audit_log
WHERE actor = @actor AND id > @after_id
ORDER BY actor, id
LIMIT @max;

-- name: ListAudit :many
SELECT * FROM audit_log WHERE id > @after_id ORDER BY id LIMIT @max;
