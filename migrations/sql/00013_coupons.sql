-- +goose Up
-- Coupons (docs/invoices.md): percent or a fixed amount in one currency off each billing period, for one
-- period, N periods or forever; the code is what customers type (the promotion code).

CREATE TABLE coupons (
    id                    text PRIMARY KEY,
    code                  text NOT NULL UNIQUE,
    name                  text NOT NULL,
    percent_off           numeric(7, 4) CHECK (percent_off > 0 AND percent_off <= 100),
    amount_off            numeric(20, 4) CHECK (amount_off > 0),
    currency              text CHECK (currency ~ '^[A-Z]{3}$'),
    duration              text NOT NULL CHECK (duration IN ('once', 'repeating', 'forever')),
    duration_in_intervals integer CHECK (duration_in_intervals BETWEEN 1 AND 1000),
    max_redemptions       integer CHECK (max_redemptions >= 1),
    -- Fence: a redemption is an UPDATE that cannot pass max_redemptions, however many run at once.
    times_redeemed        integer NOT NULL DEFAULT 0 CHECK (max_redemptions IS NULL OR times_redeemed <= max_redemptions),
    redeem_by             timestamptz,
    -- empty: any plan.
    plan_ids              text[] NOT NULL DEFAULT '{}',
    archived_at           timestamptz,
    created_at            timestamptz NOT NULL,
    CHECK ((percent_off IS NULL) <> (amount_off IS NULL)),
    CHECK ((amount_off IS NULL) = (currency IS NULL)),
    CHECK ((duration = 'repeating') = (duration_in_intervals IS NOT NULL))
);

-- A coupon redeemed on a subscription. The active one prices the next period invoices; the one that
-- priced the current period (period_start) prices that period's prorations, even after it ended or was
-- replaced, so unused time is credited at what was paid for it.
CREATE TABLE subscription_discounts (
    id              text PRIMARY KEY,
    subscription_id text NOT NULL REFERENCES subscriptions (id),
    coupon_id       text NOT NULL REFERENCES coupons (id),
    status          text NOT NULL CHECK (status IN ('active', 'ended', 'replaced')),
    -- NULL: forever.
    periods_left    integer CHECK (periods_left >= 0),
    period_start    timestamptz,
    redeemed_at     timestamptz NOT NULL,
    ended_at        timestamptz
);
CREATE UNIQUE INDEX subscription_discounts_one_active ON subscription_discounts (subscription_id) WHERE status = 'active';
CREATE INDEX subscription_discounts_subscription ON subscription_discounts (subscription_id, redeemed_at);
