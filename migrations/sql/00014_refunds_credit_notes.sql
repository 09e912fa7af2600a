-- +goose Up
-- Money back (docs/refunds.md): credit notes are the documents, refunds the gateway operations behind
-- the ones that send money back to the card.

-- Every refund or credit is a credit note: numbered like invoices (<prefix>-CN-000001), linked to the
-- invoice it credits. method says what it does: refund (money back to the card through the gateway),
-- customer_balance (credit the customer's balance: the ledger account credit:<customer>), invoice (lower
-- what an open invoice asks for).
CREATE TABLE credit_notes (
    id          text PRIMARY KEY,
    number      text NOT NULL UNIQUE,
    customer_id text NOT NULL REFERENCES customers (id),
    invoice_id  text NOT NULL REFERENCES invoices (id),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount      numeric(20, 4) NOT NULL CHECK (amount > 0),
    reason      text NOT NULL,
    method      text NOT NULL CHECK (method IN ('refund', 'customer_balance', 'invoice')),
    -- pending: a refund on its way to the gateway; issued: in effect; void: the gateway refused the refund.
    status      text NOT NULL CHECK (status IN ('pending', 'issued', 'void')),
    -- api (the merchant's backend), support (the console or /v1/support), gateway (made at the gateway,
    -- e.g. a dashboard cancel, and found by webhook, lookup or reconciliation).
    origin      text NOT NULL CHECK (origin IN ('api', 'support', 'gateway')),
    created_by  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    issued_at   timestamptz,
    voided_at   timestamptz
);
CREATE INDEX credit_notes_invoice ON credit_notes (invoice_id, created_at);
CREATE INDEX credit_notes_customer ON credit_notes (customer_id, created_at, id);
CREATE INDEX credit_notes_created ON credit_notes (created_at, id);

CREATE TABLE credit_note_lines (
    id             bigserial PRIMARY KEY,
    credit_note_id text NOT NULL REFERENCES credit_notes (id),
    description    text NOT NULL,
    amount         numeric(20, 4) NOT NULL CHECK (amount > 0)
);
CREATE INDEX credit_note_lines_note ON credit_note_lines (credit_note_id, id);

-- A refund of (part of) one payment attempt at its gateway. Like an attempt, it is recorded and committed
-- before the gateway is called, with an idempotency key that every resend reuses; an unknown outcome is
-- looked up (next_lookup_at), never guessed.
CREATE TABLE refunds (
    id                text PRIMARY KEY,
    credit_note_id    text NOT NULL UNIQUE REFERENCES credit_notes (id),
    invoice_id        text NOT NULL REFERENCES invoices (id),
    attempt_id        text NOT NULL REFERENCES payment_attempts (id),
    customer_id       text NOT NULL REFERENCES customers (id),
    gateway           text NOT NULL,
    payment_key       text NOT NULL,
    amount            numeric(20, 4) NOT NULL CHECK (amount > 0),
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    reason            text NOT NULL,
    status            text NOT NULL CHECK (status IN ('pending', 'succeeded', 'unknown', 'failed')),
    origin            text NOT NULL CHECK (origin IN ('api', 'support', 'gateway')),
    idempotency_key   text NOT NULL UNIQUE,
    -- the gateway's id of the refund (Toss: the cancel's transactionKey; Stripe: the refund id), once known.
    gateway_refund_id text,
    failure_code      text,
    failure_reason    text,
    send_count        integer NOT NULL DEFAULT 0,
    sent_at           timestamptz,
    lookup_count      integer NOT NULL DEFAULT 0,
    next_lookup_at    timestamptz,
    created_at        timestamptz NOT NULL,
    resolved_at       timestamptz,
    UNIQUE (gateway, gateway_refund_id)
);
CREATE INDEX refunds_attempt ON refunds (attempt_id, created_at);
CREATE INDEX refunds_unresolved ON refunds (next_lookup_at) WHERE status IN ('pending', 'unknown');

-- What was given back of an invoice's payments (refunds that succeeded and balance credits), and what
-- credit notes took off an open invoice. A credit note that settles an open invoice makes it paid with
-- amount_paid + amount_credited = total.
ALTER TABLE invoices ADD COLUMN amount_refunded numeric(20, 4) NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0);
ALTER TABLE invoices ADD COLUMN amount_credited numeric(20, 4) NOT NULL DEFAULT 0 CHECK (amount_credited >= 0);
-- +goose StatementBegin
DO $$
DECLARE c text;
BEGIN
    SELECT conname INTO c FROM pg_constraint
    WHERE conrelid = 'invoices'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%amount_paid >= total%';
    EXECUTE format('ALTER TABLE invoices DROP CONSTRAINT %I', c);
END
$$;
-- +goose StatementEnd
ALTER TABLE invoices ADD CONSTRAINT invoices_paid_in_full CHECK (status <> 'paid' OR amount_paid + amount_credited >= total);

-- What the gateway has refunded of an attempt (succeeded refunds). The fence: never more than was paid.
ALTER TABLE payment_attempts ADD COLUMN amount_refunded numeric(20, 4) NOT NULL DEFAULT 0
    CHECK (amount_refunded >= 0 AND amount_refunded <= amount);

-- +goose Down
ALTER TABLE payment_attempts DROP COLUMN amount_refunded;
ALTER TABLE invoices DROP CONSTRAINT invoices_paid_in_full;
ALTER TABLE invoices ADD CONSTRAINT invoices_check1 CHECK (status <> 'paid' OR amount_paid >= total);
ALTER TABLE invoices DROP COLUMN amount_credited, DROP COLUMN amount_refunded;
DROP TABLE refunds, credit_note_lines, credit_notes;
