-- Reconciliation's own tables (runs, findings). Our side of a window (attempts and what the ledger holds
-- for them) comes from billing (billing_gateway_payments.sql): reconciliation never reads billing's tables.

-- name: CreateRun :one
INSERT INTO reconciliation_runs (id, gateway, window_from, window_to, started_at, status)
VALUES (@id, @gateway, @window_from, @window_to, @started_at, 'running')
RETURNING *;

-- name: FinishRun :one
UPDATE reconciliation_runs
SET finished_at = @finished_at, status = @status, matched = @matched, findings = @findings, error = sqlc.narg(error)
WHERE id = @id
RETURNING *;

-- name: CompletedRunExists :one
SELECT EXISTS (SELECT 1 FROM reconciliation_runs
    WHERE gateway = @gateway AND window_from = @window_from AND window_to = @window_to AND status = 'completed');

-- name: InsertFinding :one
-- One finding per (gateway, kind, order id), however often the window is reconciled again.
INSERT INTO reconciliation_findings (id, run_id, gateway, kind, order_id, payment_key, attempt_id, our_amount,
    their_amount, currency, created_at)
VALUES (@id, @run_id, @gateway, @kind, @order_id, sqlc.narg(payment_key), sqlc.narg(attempt_id), sqlc.narg(our_amount),
    sqlc.narg(their_amount), sqlc.narg(currency), @created_at)
ON CONFLICT (gateway, kind, order_id) DO NOTHING
RETURNING *;

-- name: GetFinding :one
SELECT * FROM reconciliation_findings WHERE id = $1;

-- name: LockFinding :one
SELECT * FROM reconciliation_findings WHERE id = $1 FOR UPDATE;

-- name: ResolveFinding :one
UPDATE reconciliation_findings
SET status = 'resolved', resolution = @resolution, resolution_reason = @resolution_reason, resolved_by = @resolved_by,
    resolved_at = @resolved_at
WHERE id = @id AND status = 'open'
RETURNING *;

-- name: ListFindings :many
SELECT * FROM reconciliation_findings
WHERE status = @status
  AND (sqlc.narg(kind)::text IS NULL OR kind = sqlc.narg(kind))
  AND (sqlc.narg(gateway)::text IS NULL OR gateway = sqlc.narg(gateway))
  AND (created_at, id) > (@after_time::timestamptz, @after_id::text)
ORDER BY created_at, id
LIMIT @max;

-- name: ListAllFindings :many
SELECT * FROM reconciliation_findings
WHERE (sqlc.narg(kind)::text IS NULL OR kind = sqlc.narg(kind))
  AND (sqlc.narg(gateway)::text IS NULL OR gateway = sqlc.narg(gateway))
  AND (created_at, id) > (@after_time::timestamptz, @after_id::text)
ORDER BY created_at, id
LIMIT @max;
