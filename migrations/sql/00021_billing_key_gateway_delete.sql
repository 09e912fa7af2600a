-- +goose Up
-- A revoked billing key is deleted at its gateway too (Toss: DELETE /v1/billing/{billingKey}; Stripe: the
-- payment method detached). The revocation commits first, with the job that deletes it at the gateway
-- (River, same transaction); gateway_deleted_at says when the gateway confirmed. Until then the row keeps
-- its ciphertext, which the deletion needs (the gateway is told the key itself); once confirmed the
-- ciphertext is destroyed. A revoked key without gateway_deleted_at is a deletion still owed: the index
-- lets the hourly sweep find them (keys revoked before this migration included).
ALTER TABLE billing_keys ADD COLUMN gateway_deleted_at timestamptz;
ALTER TABLE billing_keys ALTER COLUMN ciphertext DROP NOT NULL;
ALTER TABLE billing_keys ADD CONSTRAINT billing_keys_ciphertext_until_gateway_deleted
    CHECK ((ciphertext IS NULL) = (gateway_deleted_at IS NOT NULL));
ALTER TABLE billing_keys ADD CONSTRAINT billing_keys_gateway_deleted_only_revoked
    CHECK (gateway_deleted_at IS NULL OR status = 'revoked');
CREATE INDEX billing_keys_gateway_delete_owed ON billing_keys (revoked_at, id)
    WHERE status = 'revoked' AND gateway_deleted_at IS NULL;

-- +goose Down
DROP INDEX billing_keys_gateway_delete_owed;
ALTER TABLE billing_keys DROP CONSTRAINT billing_keys_gateway_deleted_only_revoked;
ALTER TABLE billing_keys DROP CONSTRAINT billing_keys_ciphertext_until_gateway_deleted;
-- A destroyed ciphertext cannot come back; an empty one decrypts to nothing and the key is revoked anyway.
UPDATE billing_keys SET ciphertext = '\x' WHERE ciphertext IS NULL;
ALTER TABLE billing_keys ALTER COLUMN ciphertext SET NOT NULL;
ALTER TABLE billing_keys DROP COLUMN gateway_deleted_at;
