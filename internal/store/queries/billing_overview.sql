-- The support desk's overview (billing.Service.DelinquencyOverview), read by the console's landing page
-- through billing: the console reads none of billing's tables.

-- name: DelinquentCounts :many
SELECT status, count(*)::int AS n
FROM subscriptions
WHERE status IN ('past_due', 'suspended', 'unpaid')
GROUP BY status;

-- name: PausedDunningCount :one
SELECT count(*)::int FROM subscriptions
WHERE status IN ('past_due', 'suspended', 'unpaid') AND dunning_paused;

-- name: AmountAtRisk :many
-- What delinquent subscriptions owe: open and written-off invoices, per currency.
SELECT i.currency, sum(i.amount_due)::numeric AS amount, count(DISTINCT s.id)::int AS subscriptions
FROM subscriptions s
JOIN invoices i ON i.subscription_id = s.id
WHERE s.status IN ('past_due', 'suspended', 'unpaid')
  AND i.status IN ('open', 'uncollectible') AND i.amount_due > 0
GROUP BY i.currency
ORDER BY i.currency;

-- name: RecoveryRate :one
-- Of the times a subscription entered past_due in the window, how many were followed by a recovery
-- before @until.
SELECT count(*)::int AS entered,
    count(*) FILTER (WHERE EXISTS (
        SELECT 1 FROM events r
        WHERE r.subscription_id = e.subscription_id AND r.type = 'subscription.recovered'
          AND r.occurred_at >= e.occurred_at AND r.occurred_at <= @until
    ))::int AS recovered
FROM events e
WHERE e.type = 'subscription.past_due' AND e.occurred_at >= @since AND e.occurred_at <= @until;
