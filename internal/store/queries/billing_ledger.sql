-- name: CreateLedgerTransaction :one
INSERT INTO ledger_transactions (kind, reference, customer_id, description, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (kind, reference) DO NOTHING
RETURNING id;

-- name: AddLedgerEntry :exec
INSERT INTO ledger_entries (transaction_id, account, currency, amount) VALUES ($1, $2, $3, $4);

-- name: TrialBalance :many
SELECT account, currency, sum(amount)::numeric AS balance,
       coalesce(sum(amount) FILTER (WHERE amount > 0), 0)::numeric AS debits,
       coalesce(-sum(amount) FILTER (WHERE amount < 0), 0)::numeric AS credits
FROM ledger_entries GROUP BY account, currency ORDER BY currency, account;

-- name: AccountBalances :many
SELECT currency, sum(amount)::numeric AS balance FROM ledger_entries WHERE account = $1
GROUP BY currency ORDER BY currency;

-- name: LedgerTransactionEntries :many
-- The entries of one posted transaction, to reverse it exactly (a voided invoice's finalization).
SELECT e.account, e.currency, e.amount FROM ledger_entries e
JOIN ledger_transactions t ON t.id = e.transaction_id
WHERE t.kind = @kind AND t.reference = @reference ORDER BY e.id;
