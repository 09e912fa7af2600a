-- +goose Up
-- The whole domain model of ARCHITECTURE.md. The fences that keep money safe are constraints here, not
-- conventions in code: a bug in a worker can at worst fail a transaction, never double-charge.

-- +goose StatementBegin
CREATE FUNCTION currency_ok(c text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT c ~ '^[A-Z]{3}$'
$$;
-- +goose StatementEnd

CREATE TABLE customers (
    id          text PRIMARY KEY,
    external_id text NOT NULL UNIQUE,
    email       text NOT NULL,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE billing_keys (
    id                 text PRIMARY KEY,
    customer_id        text NOT NULL REFERENCES customers (id),
    gateway            text NOT NULL,
    -- the customer's key at the gateway (Toss customerKey); charges must send the one used at issuance.
    customer_key       text NOT NULL,
    -- AES-256-GCM ciphertext (nonce || sealed) of the gateway's token; AAD binds it to (id, customer, version).
    ciphertext         bytea NOT NULL,
    key_version        integer NOT NULL,
    card_brand         text NOT NULL DEFAULT '',
    masked_number      text NOT NULL DEFAULT '',
    status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    is_default         boolean NOT NULL DEFAULT false,
    -- set by a hard decline: no more charges on this key, a new key heals.
    hard_declined_at   timestamptz,
    hard_decline_code  text,
    created_at         timestamptz NOT NULL,
    revoked_at         timestamptz,
    CHECK (NOT (is_default AND status <> 'active'))
);
CREATE INDEX billing_keys_customer ON billing_keys (customer_id, created_at);
CREATE UNIQUE INDEX billing_keys_one_default ON billing_keys (customer_id) WHERE is_default;

CREATE TABLE plans (
    id             text PRIMARY KEY,
    code           text NOT NULL UNIQUE,
    name           text NOT NULL,
    amount         numeric(20, 4) NOT NULL CHECK (amount >= 0),
    currency       text NOT NULL CHECK (currency_ok(currency)),
    interval       text NOT NULL CHECK (interval IN ('day', 'week', 'month', 'year')),
    interval_count integer NOT NULL CHECK (interval_count BETWEEN 1 AND 365),
    trial_days     integer NOT NULL DEFAULT 0 CHECK (trial_days BETWEEN 0 AND 730),
    gateway        text,
    -- per-plan dunning policy override (JSON of dunning.Policy); NULL = the service default.
    dunning_policy jsonb,
    created_at     timestamptz NOT NULL
);

CREATE TABLE subscriptions (
    id                    text PRIMARY KEY,
    customer_id           text NOT NULL REFERENCES customers (id),
    plan_id               text NOT NULL REFERENCES plans (id),
    quantity              integer NOT NULL DEFAULT 1 CHECK (quantity >= 1),
    status                text NOT NULL CHECK (status IN ('incomplete', 'incomplete_expired', 'trialing', 'active',
                                   'past_due', 'suspended', 'unpaid', 'paused', 'canceled')),
    -- the billing anchor spreads renewals over the month instead of everyone on the 1st.
    billing_anchor        timestamptz NOT NULL,
    current_period_start  timestamptz NOT NULL,
    current_period_end    timestamptz NOT NULL,
    -- what is due is a column: the sweeper reads this index, jobs are only vehicles.
    next_renewal_at       timestamptz,
    trial_end             timestamptz,
    cancel_at_period_end  boolean NOT NULL DEFAULT false,
    canceled_at           timestamptz,
    cancel_reason         text,
    pending_plan_id       text REFERENCES plans (id),
    pending_quantity      integer,
    paused_at             timestamptz,
    incomplete_expires_at timestamptz,
    -- dunning
    past_due_since        timestamptz,
    grace_ends_at         timestamptz,
    dunning_ends_at       timestamptz,
    dunning_paused        boolean NOT NULL DEFAULT false,
    dunning_paused_until  timestamptz,
    version               integer NOT NULL DEFAULT 1,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    CHECK (current_period_end > current_period_start)
);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id, created_at);
CREATE INDEX subscriptions_due ON subscriptions (next_renewal_at) WHERE next_renewal_at IS NOT NULL;
CREATE INDEX subscriptions_grace_due ON subscriptions (grace_ends_at) WHERE status = 'past_due';
CREATE INDEX subscriptions_incomplete_due ON subscriptions (incomplete_expires_at) WHERE status = 'incomplete';
CREATE INDEX subscriptions_delinquent ON subscriptions (past_due_since)
    WHERE status IN ('past_due', 'suspended', 'unpaid');

CREATE TABLE invoices (
    id              text PRIMARY KEY,
    customer_id     text NOT NULL REFERENCES customers (id),
    subscription_id text REFERENCES subscriptions (id),
    kind            text NOT NULL CHECK (kind IN ('initial', 'renewal', 'proration', 'manual')),
    status          text NOT NULL CHECK (status IN ('draft', 'open', 'paid', 'void', 'uncollectible')),
    currency        text NOT NULL CHECK (currency_ok(currency)),
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    subtotal        numeric(20, 4) NOT NULL DEFAULT 0,
    total           numeric(20, 4) NOT NULL DEFAULT 0,
    amount_due      numeric(20, 4) NOT NULL DEFAULT 0 CHECK (amount_due >= 0),
    amount_paid     numeric(20, 4) NOT NULL DEFAULT 0 CHECK (amount_paid >= 0),
    attempt_count   integer NOT NULL DEFAULT 0,
    -- when the next charge attempt is due (dunning retry or technical retry); NULL = nothing scheduled.
    next_attempt_at timestamptz,
    -- the first failure, from which the dunning window is counted.
    first_failed_at timestamptz,
    created_at      timestamptz NOT NULL,
    finalized_at    timestamptz,
    paid_at         timestamptz,
    voided_at       timestamptz,
    version         integer NOT NULL DEFAULT 1,
    CHECK (period_end >= period_start),
    CHECK (status <> 'paid' OR amount_paid >= total)
);
-- Fence: one renewal (or initial) invoice per (subscription, period).
CREATE UNIQUE INDEX invoices_one_per_period ON invoices (subscription_id, period_start)
    WHERE kind IN ('initial', 'renewal');
CREATE INDEX invoices_customer ON invoices (customer_id, created_at);
CREATE INDEX invoices_subscription ON invoices (subscription_id, created_at);
CREATE INDEX invoices_attempt_due ON invoices (next_attempt_at) WHERE status = 'open' AND next_attempt_at IS NOT NULL;

CREATE TABLE invoice_lines (
    id           bigserial PRIMARY KEY,
    invoice_id   text NOT NULL REFERENCES invoices (id),
    description  text NOT NULL,
    plan_id      text REFERENCES plans (id),
    quantity     integer NOT NULL DEFAULT 1,
    unit_amount  numeric(20, 4) NOT NULL,
    amount       numeric(20, 4) NOT NULL,
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL,
    proration    boolean NOT NULL DEFAULT false
);
CREATE INDEX invoice_lines_invoice ON invoice_lines (invoice_id, id);

CREATE TABLE payment_attempts (
    id                  text PRIMARY KEY,
    invoice_id          text NOT NULL REFERENCES invoices (id),
    customer_id         text NOT NULL REFERENCES customers (id),
    billing_key_id      text REFERENCES billing_keys (id),
    gateway             text NOT NULL,
    seq                 integer NOT NULL,
    -- deterministic per attempt and sent unchanged on every resend of it.
    order_id            text NOT NULL UNIQUE,
    idempotency_key     text NOT NULL UNIQUE,
    amount              numeric(20, 4) NOT NULL CHECK (amount > 0),
    currency            text NOT NULL CHECK (currency_ok(currency)),
    status              text NOT NULL CHECK (status IN ('pending', 'succeeded', 'declined', 'unknown', 'failed', 'reversed')),
    decline_code        text,
    decline_class       text CHECK (decline_class IN ('hard', 'soft')),
    failure_reason      text,
    gateway_payment_key text,
    -- offline payments recorded by support have no gateway call.
    offline_reference   text,
    send_count          integer NOT NULL DEFAULT 0,
    lookup_count        integer NOT NULL DEFAULT 0,
    next_lookup_at      timestamptz,
    created_at          timestamptz NOT NULL,
    sent_at             timestamptz,
    resolved_at         timestamptz,
    UNIQUE (invoice_id, seq)
);
-- Fence: at most one in-flight attempt per invoice. No new attempt while an outcome is unknown.
CREATE UNIQUE INDEX payment_attempts_one_in_flight ON payment_attempts (invoice_id)
    WHERE status IN ('pending', 'unknown');
CREATE INDEX payment_attempts_unresolved ON payment_attempts (next_lookup_at)
    WHERE status IN ('pending', 'unknown');
CREATE INDEX payment_attempts_billing_key ON payment_attempts (billing_key_id, created_at);
CREATE INDEX payment_attempts_gateway_key ON payment_attempts (gateway, gateway_payment_key);

-- Double-entry ledger. Entries carry a signed amount: debit > 0, credit < 0.
CREATE TABLE ledger_transactions (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL,
    -- the cause (invoice id, attempt id, ...); (kind, reference) is unique so a retry cannot post twice.
    reference   text NOT NULL,
    customer_id text REFERENCES customers (id),
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    UNIQUE (kind, reference)
);

CREATE TABLE ledger_entries (
    id             bigserial PRIMARY KEY,
    transaction_id bigint NOT NULL REFERENCES ledger_transactions (id),
    account        text NOT NULL,
    currency       text NOT NULL CHECK (currency_ok(currency)),
    amount         numeric(20, 4) NOT NULL CHECK (amount <> 0)
);
CREATE INDEX ledger_entries_transaction ON ledger_entries (transaction_id);
CREATE INDEX ledger_entries_account ON ledger_entries (account, currency);

-- +goose StatementBegin
CREATE FUNCTION ledger_transaction_balances() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced text;
BEGIN
    SELECT currency INTO unbalanced
    FROM ledger_entries
    WHERE transaction_id = NEW.transaction_id
    GROUP BY currency
    HAVING sum(amount) <> 0
    LIMIT 1;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction % does not balance in %', NEW.transaction_id, unbalanced
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- Checked at commit, so a transaction's entries can be inserted one by one.
CREATE CONSTRAINT TRIGGER ledger_entries_balance
    AFTER INSERT OR UPDATE ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balances();

-- +goose StatementBegin
CREATE FUNCTION reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION reject_change();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION reject_change();

-- Domain events: the timeline and the outbox of outgoing webhooks, written in the transaction that
-- causes them.
CREATE TABLE events (
    id              text PRIMARY KEY,
    seq             bigserial UNIQUE,
    type            text NOT NULL,
    customer_id     text REFERENCES customers (id),
    subscription_id text REFERENCES subscriptions (id),
    invoice_id      text REFERENCES invoices (id),
    attempt_id      text REFERENCES payment_attempts (id),
    data            jsonb NOT NULL DEFAULT '{}',
    occurred_at     timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_subscription ON events (subscription_id, seq);
CREATE INDEX events_customer ON events (customer_id, seq);
CREATE INDEX events_invoice ON events (invoice_id, seq);

CREATE TABLE webhook_endpoints (
    id         text PRIMARY KEY,
    url        text NOT NULL,
    events     text[] NOT NULL DEFAULT '{}',
    -- HMAC signing secret, encrypted with the vault's key ring like billing keys.
    secret_ciphertext bytea NOT NULL,
    secret_key_version integer NOT NULL,
    status     text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'deleted')),
    created_at timestamptz NOT NULL,
    deleted_at timestamptz
);

CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    event_id        text NOT NULL REFERENCES events (id),
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE webhook_inbox (
    gateway      text NOT NULL,
    event_id     text NOT NULL,
    event_kind   text NOT NULL,
    order_id     text,
    payload      bytea NOT NULL,
    received_at  timestamptz NOT NULL,
    processed_at timestamptz,
    result       text,
    PRIMARY KEY (gateway, event_id)
);
CREATE INDEX webhook_inbox_received ON webhook_inbox (gateway, received_at);

CREATE TABLE idempotency_keys (
    scope           text NOT NULL,   -- hash of the token: keys are scoped per caller
    method          text NOT NULL,
    path            text NOT NULL,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash    bytea NOT NULL,
    status          text NOT NULL CHECK (status IN ('in_progress', 'completed')),
    response_status integer,
    response_body   bytea,
    response_headers jsonb,
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL,
    completed_at    timestamptz,
    PRIMARY KEY (scope, method, path, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    role        text NOT NULL,
    action      text NOT NULL,
    target_type text NOT NULL,
    target_id   text NOT NULL,
    reason      text NOT NULL,
    before      jsonb,
    after       jsonb,
    request_id  text NOT NULL DEFAULT '',
    origin      text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_target ON audit_log (target_id, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION reject_change();
-- +goose StatementBegin
CREATE FUNCTION reject_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION reject_truncate();

CREATE TABLE api_keys (
    id         text PRIMARY KEY,
    name       text NOT NULL DEFAULT '',
    role       text NOT NULL CHECK (role IN ('service', 'support', 'admin')),
    token_hash bytea NOT NULL UNIQUE,
    prefix     text NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

-- One row: the persisted test clock (only used when BILLING_TEST_CLOCK=1).
CREATE TABLE test_clock (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    now        timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reconciliation_runs (
    id          text PRIMARY KEY,
    gateway     text NOT NULL,
    window_from timestamptz NOT NULL,
    window_to   timestamptz NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    status      text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    matched     integer NOT NULL DEFAULT 0,
    findings    integer NOT NULL DEFAULT 0,
    error       text
);

CREATE TABLE reconciliation_findings (
    id             text PRIMARY KEY,
    run_id         text NOT NULL REFERENCES reconciliation_runs (id),
    gateway        text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('missing_here', 'missing_there', 'amount_mismatch')),
    order_id       text NOT NULL,
    payment_key    text,
    attempt_id     text REFERENCES payment_attempts (id),
    our_amount     numeric(20, 4),
    their_amount   numeric(20, 4),
    currency       text,
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    resolution     text,
    created_at     timestamptz NOT NULL,
    resolved_at    timestamptz,
    UNIQUE (gateway, kind, order_id)
);

-- Plans: the amount is immutable once a subscription uses the plan.
-- +goose StatementBegin
CREATE FUNCTION plans_amount_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.amount <> OLD.amount OR NEW.currency <> OLD.currency OR NEW.interval <> OLD.interval
        OR NEW.interval_count <> OLD.interval_count)
       AND EXISTS (SELECT 1 FROM subscriptions WHERE plan_id = OLD.id) THEN
        RAISE EXCEPTION 'plan % is in use: amount, currency and interval are immutable', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER plans_immutable_when_used BEFORE UPDATE ON plans
    FOR EACH ROW EXECUTE FUNCTION plans_amount_immutable();

-- +goose Down
DROP TABLE reconciliation_findings, reconciliation_runs, test_clock, api_keys, audit_log, idempotency_keys,
    webhook_inbox, webhook_deliveries, webhook_endpoints, events, ledger_entries, ledger_transactions,
    payment_attempts, invoice_lines, invoices, subscriptions, plans, billing_keys, customers;
DROP FUNCTION plans_amount_immutable, reject_truncate, reject_change, ledger_transaction_balances, currency_ok;
