-- name: CreditBalance :one
-- What a customer's credit account holds in one currency. The account is a liability, so held credit is
-- a negative balance.
SELECT coalesce(sum(amount), 0)::numeric AS balance FROM ledger_entries
WHERE account = @account AND currency = @currency;

-- name: LockCustomerCredit :exec
-- Serializes spending a customer's credit until the transaction ends: two invoices finalized at once
-- must not both spend the same credit. Taken last, after the subscription and invoice locks.
SELECT pg_advisory_xact_lock(hashtextextended(@account::text, 0));
