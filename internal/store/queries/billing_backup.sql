-- Backup card and customer time zone (docs/dunning.md).

-- name: MarkBackupAttempt :exec
-- Inside the attempt's own transaction: the unique index payment_attempts_one_backup refuses a second.
UPDATE payment_attempts SET backup = true WHERE id = $1;

-- name: HasBackupAttempt :one
SELECT EXISTS (SELECT 1 FROM payment_attempts WHERE invoice_id = $1 AND backup);

-- name: SetInvoiceBackupDue :exec
UPDATE invoices SET backup_due = @backup_due WHERE id = @id;

-- name: LastCardDecline :one
-- The latest declined attempt on the invoice's default cards (the backup's are not part of the ladder).
SELECT * FROM payment_attempts WHERE invoice_id = $1 AND status = 'declined' AND NOT backup
ORDER BY seq DESC LIMIT 1;

-- name: CustomerTimeZone :one
SELECT time_zone FROM customers WHERE id = $1;

-- name: SetCustomerTimeZone :one
UPDATE customers SET time_zone = @time_zone WHERE id = @id RETURNING *;
