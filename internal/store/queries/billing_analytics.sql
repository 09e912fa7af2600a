-- The figures of GET /v1/analytics/* and the console's Analytics page (billing/analytics.go). Every query
-- reads one time range through an index of migration 00018; docs/analytics.md defines each figure.

-- name: AnalyticsAtRiskCharges :many
-- Invoices whose collection first failed in [@since, @until) (the at-risk cohorts), each with the charges
-- that reached a card (declined or succeeded), in order; an invoice that found no card has one row with
-- no charge.
SELECT i.id, i.currency, i.status, i.first_failed_at::timestamptz AS first_failed_at,
       greatest(i.total - i.credit_applied, 0)::numeric AS asked, i.credit_applied, i.amount_paid,
       a.seq AS charge_seq, a.status AS charge_status, a.decline_code, a.decline_class
FROM invoices i
LEFT JOIN payment_attempts a ON a.invoice_id = i.id AND a.status IN ('declined', 'succeeded')
WHERE i.first_failed_at >= @since AND i.first_failed_at < @until
ORDER BY i.first_failed_at, i.id, a.seq;

-- name: AnalyticsRecoveredPayments :many
-- At-risk invoices (of any cohort) recovered in [@since, @until): when, and what had been at risk.
SELECT currency, paid_at::timestamptz AS paid_at, greatest(total - credit_applied, 0)::numeric AS asked
FROM invoices
WHERE first_failed_at IS NOT NULL AND paid_at IS NOT NULL AND paid_at >= @since AND paid_at < @until
  AND status = 'paid' AND amount_paid > credit_applied
ORDER BY paid_at, id;

-- name: AnalyticsRecurringInvoices :many
-- Initial and renewal invoices whose service period reaches into [@since, @until], not voided, with the
-- interval of the plan they bill and when their subscription ended (canceled, or marked unpaid and still
-- unpaid), for MRR and the churn base.
SELECT i.subscription_id::text AS subscription_id, i.currency, i.period_start, i.period_end,
       i.total_excluding_tax, p.interval, p.interval_count,
       s.status AS subscription_status, s.canceled_at,
       (SELECT max(e.occurred_at) FROM events e
        WHERE s.status = 'unpaid' AND e.subscription_id = s.id AND e.type = 'subscription.unpaid') AS unpaid_at
FROM invoices i
JOIN subscriptions s ON s.id = i.subscription_id
JOIN LATERAL (SELECT l.plan_id FROM invoice_lines l
              WHERE l.invoice_id = i.id AND l.plan_id IS NOT NULL AND NOT l.proration
              ORDER BY l.id LIMIT 1) l ON true
JOIN plans p ON p.id = l.plan_id
WHERE i.kind IN ('initial', 'renewal') AND i.status IN ('paid', 'open', 'uncollectible')
  AND i.period_end > @since AND i.period_start <= @until
ORDER BY i.period_start, i.id;

-- name: AnalyticsInvoluntaryChurn :many
-- Dunning's final actions in [@since, @until): subscriptions canceled by dunning or marked unpaid.
SELECT e.subscription_id::text AS subscription_id, e.type, e.occurred_at, p.currency
FROM events e
JOIN subscriptions s ON s.id = e.subscription_id
JOIN plans p ON p.id = s.plan_id
WHERE e.type IN ('subscription.canceled', 'subscription.unpaid') AND e.occurred_at >= @since AND e.occurred_at < @until
  AND (e.type = 'subscription.unpaid' OR e.data->>'final_action' IS NOT NULL)
ORDER BY e.occurred_at, e.seq;
