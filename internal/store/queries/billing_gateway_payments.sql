-- Billing's side of a reconciliation, which package reconcile reads through billing.Service: the charge
-- attempts at one gateway and what the ledger holds for each at that gateway's clearing account
-- (the payment minus its refunds' postings, which reference the refund). The account's name comes from billing.ClearingAccount.

-- name: CollectedPaymentsInWindow :many
-- Attempts created in [from, to) that collected money (succeeded, or reversed since).
SELECT a.id, a.order_id, a.amount, a.currency, a.status, a.gateway_payment_key,
    coalesce((SELECT sum(e.amount) FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
              WHERE (t.reference = a.id OR t.reference IN (SELECT r.id FROM refunds r WHERE r.attempt_id = a.id))
                AND e.account = @clearing_account::text), 0)::numeric(20, 4) AS ledger_held
FROM payment_attempts a
WHERE a.gateway = @gateway AND a.created_at >= @from_at AND a.created_at < @to_at
  AND a.status IN ('succeeded', 'reversed')
ORDER BY a.created_at, a.id;

-- name: GatewayPaymentsByOrderIDs :many
-- Attempts by order id, whatever their status.
SELECT a.id, a.order_id, a.amount, a.currency, a.status, a.gateway_payment_key,
    coalesce((SELECT sum(e.amount) FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
              WHERE (t.reference = a.id OR t.reference IN (SELECT r.id FROM refunds r WHERE r.attempt_id = a.id))
                AND e.account = @clearing_account::text), 0)::numeric(20, 4) AS ledger_held
FROM payment_attempts a
WHERE a.gateway = @gateway AND a.order_id = ANY(@order_ids::text[]);
