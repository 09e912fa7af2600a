-- name: QueueLinkMail :execrows
-- A fresh-link email a customer asked for on the expired page: queued unless one was queued for them
-- since @since, or @daily_max since @day_since (wall clock), so the button cannot be used to flood an
-- inbox. event_id names the customer and a time bucket: two requests at once in the same bucket queue one.
INSERT INTO mail_outbox (event_id, kind, customer_id, data, status, attempts, next_attempt_at, occurred_at,
                         created_at, updated_at)
SELECT @event_id::text, 'portal_link', @customer_id::text, '{}'::jsonb, 'queued', 0, @now::timestamptz,
       @occurred_at::timestamptz, @now::timestamptz, @now::timestamptz
WHERE NOT EXISTS (SELECT 1 FROM mail_outbox m
                  WHERE m.customer_id = @customer_id::text AND m.kind = 'portal_link' AND m.created_at > @since::timestamptz)
  AND (SELECT count(*) FROM mail_outbox m
       WHERE m.customer_id = @customer_id::text AND m.kind = 'portal_link' AND m.created_at > @day_since::timestamptz) < @daily_max::int
ON CONFLICT (event_id, kind) DO NOTHING;
