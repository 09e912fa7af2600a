-- +goose Up
-- Money off and tax (docs/invoices.md): tax rates attached to plans or customers, and the composition of
-- every invoice (discount, supply value, tax, credit applied) kept on the invoice and on each line.

CREATE TABLE tax_rates (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    -- 10 means 10 %.
    percentage  numeric(7, 4) NOT NULL CHECK (percentage >= 0 AND percentage <= 100),
    -- inclusive: prices already contain the tax (the Korean norm); exclusive: the tax is added on top.
    inclusive   boolean NOT NULL,
    country     text CHECK (country IS NULL OR country ~ '^[A-Z]{2}$'),
    created_at  timestamptz NOT NULL
);

-- Korean VAT out of the box. Nothing is taxed until a rate is attached to a plan or a customer.
INSERT INTO tax_rates (id, name, percentage, inclusive, country, created_at)
VALUES ('txr_kr_vat', 'VAT (부가가치세)', 10, true, 'KR', '2026-01-01T00:00:00Z');

-- A customer's rate (their jurisdiction or exemption) wins over the plan's.
ALTER TABLE plans ADD COLUMN tax_rate_id text REFERENCES tax_rates (id);
ALTER TABLE customers ADD COLUMN tax_rate_id text REFERENCES tax_rates (id);

-- subtotal stays the sum of the priced lines; total = subtotal - total_discount + exclusive tax.
ALTER TABLE invoices
    ADD COLUMN total_discount      numeric(20, 4) NOT NULL DEFAULT 0,
    ADD COLUMN total_excluding_tax numeric(20, 4) NOT NULL DEFAULT 0,
    ADD COLUMN tax                 numeric(20, 4) NOT NULL DEFAULT 0,
    -- the tax-free part of the total (lines without a tax rate): Toss's taxFreeAmount.
    ADD COLUMN tax_free            numeric(20, 4) NOT NULL DEFAULT 0,
    ADD COLUMN credit_applied      numeric(20, 4) NOT NULL DEFAULT 0 CHECK (credit_applied >= 0);
-- Invoices from before this migration had neither discount nor tax.
UPDATE invoices SET total_excluding_tax = total, tax_free = total;

ALTER TABLE invoice_lines
    ADD COLUMN discount       numeric(20, 4) NOT NULL DEFAULT 0,
    ADD COLUMN coupon_id      text,
    ADD COLUMN tax            numeric(20, 4) NOT NULL DEFAULT 0,
    ADD COLUMN tax_rate_id    text, -- no foreign key on an append-only row (00010)
    ADD COLUMN tax_percentage numeric(7, 4),
    ADD COLUMN tax_inclusive  boolean,
    ADD COLUMN supply_value   numeric(20, 4) NOT NULL DEFAULT 0,
    ADD COLUMN total          numeric(20, 4) NOT NULL DEFAULT 0;
UPDATE invoice_lines SET supply_value = amount, total = amount;
