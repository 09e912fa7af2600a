-- name: NextDocumentNumber :one
-- Takes the next number of a prefix. The upsert locks the counter row until the caller's transaction
-- ends, so numbers are handed out in commit order and a rollback returns its number (no gaps).
INSERT INTO document_number_counters (prefix, last_number) VALUES (@prefix, 1)
ON CONFLICT (prefix) DO UPDATE SET last_number = document_number_counters.last_number + 1
RETURNING last_number;

-- name: SetInvoiceNumber :exec
UPDATE invoices SET number = @number WHERE id = @id AND number IS NULL;

-- name: TakeDocumentNumbers :one
-- Takes the next @n numbers of a prefix at once (a batch of renewals): the last of them is returned, the
-- first is last - n + 1. The same lock as NextDocumentNumber, taken once per batch.
INSERT INTO document_number_counters (prefix, last_number) VALUES (@prefix, @n::bigint)
ON CONFLICT (prefix) DO UPDATE SET last_number = document_number_counters.last_number + @n::bigint
RETURNING last_number;
