-- name: DueRenewalNotices :many
-- The subscriptions owed an upcoming-renewal notice at @now: active (the plan's renewal_notice_days) or
-- trialing (its trial_end_notice_days), renewing after @now and within the plan's window, not told yet.
-- Per plan and status a range scan of subscriptions_renewal_notice: the cost follows the windows of the
-- plans that notify, and plans that do not are never scanned.
SELECT s.id, s.next_renewal_at::timestamptz AS renews_at, (s.status = 'trialing')::boolean AS trial, w.notice_days::int AS notice_days
FROM (SELECT @now::timestamptz AS now) c
CROSS JOIN plans p
CROSS JOIN LATERAL (VALUES ('trialing', p.trial_end_notice_days), ('active', p.renewal_notice_days)) AS w (status, notice_days)
JOIN subscriptions s ON s.plan_id = p.id AND s.status = w.status AND NOT s.cancel_at_period_end
    AND s.next_renewal_at > c.now
    AND s.next_renewal_at <= c.now + w.notice_days * interval '1 day'
WHERE w.notice_days > 0
  AND NOT EXISTS (SELECT 1 FROM renewal_notices n WHERE n.subscription_id = s.id AND n.renews_at = s.next_renewal_at)
ORDER BY s.next_renewal_at, s.id
LIMIT @max;

-- name: NextRenewalNoticeTime :one
-- The earliest time after @after at which a notice falls due (the test clock steps through these);
-- 9999-12-31 when none will.
SELECT coalesce(min(s.next_renewal_at - w.notice_days * interval '1 day'), '9999-12-31T00:00:00Z')::timestamptz AS next
FROM plans p
CROSS JOIN LATERAL (VALUES ('trialing', p.trial_end_notice_days), ('active', p.renewal_notice_days)) AS w (status, notice_days)
JOIN subscriptions s ON s.plan_id = p.id AND s.status = w.status AND NOT s.cancel_at_period_end
    AND s.next_renewal_at - w.notice_days * interval '1 day' > @after::timestamptz
WHERE w.notice_days > 0
  AND NOT EXISTS (SELECT 1 FROM renewal_notices n WHERE n.subscription_id = s.id AND n.renews_at = s.next_renewal_at);

-- name: ClaimRenewalNotice :execrows
-- Takes the notice of one (subscription, renewal): 1 row for the transaction that tells, 0 for any other
-- (a concurrent sweep waits for the first to commit, then finds the row).
INSERT INTO renewal_notices (subscription_id, renews_at, trial, created_at)
VALUES (@subscription_id, @renews_at, @trial, @now)
ON CONFLICT (subscription_id, renews_at) DO NOTHING;

-- name: SubscriptionRenewalNotices :many
-- The notices a subscription was sent, oldest first.
SELECT * FROM renewal_notices WHERE subscription_id = $1 ORDER BY renews_at;
