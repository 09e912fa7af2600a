-- name: CreateCoupon :one
INSERT INTO coupons (id, code, name, percent_off, amount_off, currency, duration, duration_in_intervals,
    max_redemptions, redeem_by, plan_ids, created_at)
VALUES (@id, @code, @name, @percent_off, @amount_off, @currency, @duration, @duration_in_intervals,
    @max_redemptions, @redeem_by, @plan_ids, @created_at)
RETURNING *;

-- name: GetCoupon :one
SELECT * FROM coupons WHERE id = $1;

-- name: GetCouponByIDOrCode :one
SELECT * FROM coupons WHERE id = $1 OR code = $1 ORDER BY (id = $1) DESC LIMIT 1;

-- name: ListCoupons :many
SELECT * FROM coupons
WHERE (NOT @has_cursor::boolean OR (created_at, id) > (@after_time::timestamptz, @after_id::text))
ORDER BY created_at, id
LIMIT @max;

-- name: ArchiveCoupon :one
UPDATE coupons SET archived_at = coalesce(archived_at, @now) WHERE id = @id RETURNING *;

-- name: RedeemCoupon :one
-- One redemption, refused (no row) when the limit is reached: the row lock serializes concurrent ones.
UPDATE coupons SET times_redeemed = times_redeemed + 1
WHERE id = @id AND archived_at IS NULL AND (max_redemptions IS NULL OR times_redeemed < max_redemptions)
RETURNING *;

-- name: CreateSubscriptionDiscount :one
INSERT INTO subscription_discounts (id, subscription_id, coupon_id, status, periods_left, redeemed_at)
VALUES (@id, @subscription_id, @coupon_id, 'active', @periods_left, @redeemed_at)
RETURNING *;

-- name: ReplaceActiveDiscount :exec
UPDATE subscription_discounts SET status = 'replaced', ended_at = @now
WHERE subscription_id = @subscription_id AND status = 'active';

-- name: ActiveDiscount :one
SELECT * FROM subscription_discounts WHERE subscription_id = $1 AND status = 'active' FOR UPDATE;

-- name: PeriodDiscount :one
-- The discount that priced the period starting at period_start: the latest to do so.
SELECT * FROM subscription_discounts WHERE subscription_id = @subscription_id AND period_start = @period_start
ORDER BY redeemed_at DESC, id DESC LIMIT 1;

-- name: UseDiscount :exec
UPDATE subscription_discounts SET periods_left = @periods_left, period_start = @period_start,
    status = CASE WHEN @periods_left::integer = 0 THEN 'ended' ELSE status END,
    ended_at = CASE WHEN @periods_left::integer = 0 THEN @now ELSE ended_at END
WHERE id = @id;

-- name: CountPeriodOfDiscount :exec
-- A discount that counts periods without pricing one (the plan is not among the coupon's).
UPDATE subscription_discounts SET periods_left = @periods_left,
    status = CASE WHEN @periods_left::integer = 0 THEN 'ended' ELSE status END,
    ended_at = CASE WHEN @periods_left::integer = 0 THEN @now ELSE ended_at END
WHERE id = @id;

-- name: ActiveDiscountView :one
SELECT d.id, d.coupon_id, c.code, d.periods_left, d.period_start, d.redeemed_at
FROM subscription_discounts d JOIN coupons c ON c.id = d.coupon_id
WHERE d.subscription_id = $1 AND d.status = 'active';
