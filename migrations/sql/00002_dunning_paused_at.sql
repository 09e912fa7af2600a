-- +goose Up
-- When support paused a subscription's dunning. Resuming (by hand, or at dunning_paused_until) moves every
-- pending dunning deadline (retries, grace end, dunning end) later by the time the pause lasted: a pause
-- stops the dunning clock instead of letting the deadlines pile up behind it.
ALTER TABLE subscriptions ADD COLUMN dunning_paused_at timestamptz;
-- The sweeper's scan for pauses whose time is up.
CREATE INDEX subscriptions_dunning_resume_due ON subscriptions (dunning_paused_until)
    WHERE dunning_paused AND dunning_paused_until IS NOT NULL;

-- +goose Down
DROP INDEX subscriptions_dunning_resume_due;
ALTER TABLE subscriptions DROP COLUMN dunning_paused_at;
