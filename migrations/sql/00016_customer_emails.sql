-- +goose Up
-- Customer emails (docs/customer-emails.md). A customer's locale chooses the language of the emails
-- sent to them: ko (the default: the service's merchants are Korean) or en.
ALTER TABLE customers ADD COLUMN locale text NOT NULL DEFAULT 'ko' CHECK (locale IN ('ko', 'en'));

-- The email outbox: one row per (event, kind of email), inserted in the transaction that records the
-- event, so an email is owed exactly when its event committed. The row is the truth and a River job
-- only its ticket (as for webhook deliveries).
--   queued  : waiting for its next attempt at next_attempt_at.
--   sending : claimed by a sender until next_attempt_at (the lease). message_id was fixed before the SMTP
--             transaction began; a row left 'sending' past its lease (its sender died, possibly after the
--             server accepted the message) is sent again with the same message_id.
--   sent    : the SMTP server accepted it (250 to the end of DATA).
--   failed  : refused for good (5xx) or out of attempts.
--   skipped : nothing to send (the kind is turned off, or the customer has no address).
-- data is the event's data, copied: the email is rendered from it and from the current state of the
-- customer, subscription and invoice it is about, read through billing.
CREATE TABLE mail_outbox (
    id              bigserial PRIMARY KEY,
    event_id        text NOT NULL,
    kind            text NOT NULL,
    customer_id     text,
    subscription_id text,
    invoice_id      text,
    data            jsonb NOT NULL DEFAULT '{}',
    status          text NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    message_id      text,
    recipient       text,
    subject         text,
    last_code       int,
    last_error      text,
    -- occurred_at is the event's domain time (the timeline orders by it); the rest is wall-clock bookkeeping.
    occurred_at     timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    sent_at         timestamptz,
    UNIQUE (event_id, kind)
);
-- The dispatcher's scan: rows waiting for an attempt or holding an expired lease.
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status IN ('queued', 'sending');
-- The console's timeline: a customer's emails.
CREATE INDEX mail_outbox_customer ON mail_outbox (customer_id, occurred_at, id);

-- +goose Down
DROP TABLE mail_outbox;
ALTER TABLE customers DROP COLUMN locale;
