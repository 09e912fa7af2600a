-- +goose Up
-- Invoice and credit-note numbers: sequential per merchant prefix, gapless and unique (docs/numbering.md).
--
-- A number is taken from the prefix's counter row in the transaction that finalizes the document. The
-- row lock serializes finalizers of one prefix across replicas, and a transaction that rolls back takes
-- its increment with it: no number is skipped, none is given twice. A sequence would be faster and is
-- wrong here: nextval is never rolled back, so a failed finalization would leave a gap.
CREATE TABLE document_number_counters (
    prefix      text PRIMARY KEY CHECK (prefix ~ '^[A-Z0-9][A-Z0-9-]{0,19}$'),
    last_number bigint NOT NULL CHECK (last_number >= 0)
);

-- NULL while a draft; set once at finalization and never changed (a voided invoice keeps its number).
ALTER TABLE invoices ADD COLUMN number text UNIQUE;

-- +goose StatementBegin
CREATE FUNCTION invoice_number_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.number IS NOT NULL AND NEW.number IS DISTINCT FROM OLD.number THEN
        RAISE EXCEPTION 'invoice % keeps its number %', OLD.id, OLD.number USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER invoices_number_immutable BEFORE UPDATE OF number ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoice_number_immutable();

-- Invoices finalized before numbering existed are numbered in the order they were finalized, under the
-- default prefix, and the counter continues after them.
WITH ordered AS (
    SELECT id, row_number() OVER (ORDER BY finalized_at, created_at, id) AS n
    FROM invoices WHERE finalized_at IS NOT NULL
)
UPDATE invoices SET number = 'INV-' || lpad(ordered.n::text, 6, '0')
FROM ordered WHERE invoices.id = ordered.id;
INSERT INTO document_number_counters (prefix, last_number)
SELECT 'INV', count(*) FROM invoices WHERE finalized_at IS NOT NULL
HAVING count(*) > 0;

-- +goose Down
DROP TRIGGER invoices_number_immutable ON invoices;
DROP FUNCTION invoice_number_immutable;
ALTER TABLE invoices DROP COLUMN number;
DROP TABLE document_number_counters;
