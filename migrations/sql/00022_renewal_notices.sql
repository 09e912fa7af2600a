-- +goose Up
-- Upcoming-renewal notices (docs/customer-emails.md, "Upcoming renewal"). A plan says how many days
-- before a renewal its subscribers are told (renewal_notice_days; NULL: not told) and how many days before
-- a free trial becomes a paid subscription (trial_end_notice_days; 7 unless the plan says otherwise, 0: not
-- told), since Korean e-commerce law asks for a notice before a free trial converts to paid.
ALTER TABLE plans
    ADD COLUMN renewal_notice_days   integer CHECK (renewal_notice_days BETWEEN 1 AND 90),
    ADD COLUMN trial_end_notice_days integer NOT NULL DEFAULT 7 CHECK (trial_end_notice_days BETWEEN 0 AND 90);

-- One row per (subscription, renewal) told about: the fence that makes the notice (its event and the
-- email the event owes) exactly once across sweeps, replicas and restarts. renews_at is the renewal the
-- notice announces (the subscription's next_renewal_at then); a renewal moved by a plan change or a pause
-- is a different renewal and gets its own notice.
CREATE TABLE renewal_notices (
    subscription_id text NOT NULL REFERENCES subscriptions (id),
    renews_at       timestamptz NOT NULL,
    trial           boolean NOT NULL,
    -- domain time (the test clock when it is on)
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (subscription_id, renews_at)
);

-- The sweep: per plan and status, the subscriptions that renew inside the plan's notice window. Only the
-- statuses that get a notice, so the index stays small and the cost follows the windows, not the table.
CREATE INDEX subscriptions_renewal_notice ON subscriptions (plan_id, status, next_renewal_at)
    WHERE status IN ('active', 'trialing') AND NOT cancel_at_period_end;

-- +goose Down
DROP INDEX subscriptions_renewal_notice;
DROP TABLE renewal_notices;
ALTER TABLE plans DROP COLUMN trial_end_notice_days, DROP COLUMN renewal_notice_days;
