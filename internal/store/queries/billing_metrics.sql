-- Operational figures for Prometheus, computed at scrape time from the rows that are the truth.

-- name: OldestDueRenewal :one
-- The renewal that has waited longest: due, in a state that renews, and not yet invoiced (renewing moves
-- next_renewal_at to the next period). The subscriptions_due index serves it.
SELECT coalesce(min(next_renewal_at), @now::timestamptz)::timestamptz AS oldest FROM subscriptions
WHERE next_renewal_at <= @now AND status IN ('active', 'trialing', 'past_due');

-- name: UnresolvedAttemptsByGateway :many
-- Attempts whose outcome is not known yet (pending or unknown), per gateway: how many and since when.
SELECT gateway, count(*)::int AS n, min(created_at)::timestamptz AS oldest FROM payment_attempts
WHERE status IN ('pending', 'unknown')
GROUP BY gateway;
