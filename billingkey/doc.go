// Package billingkey is the vault for customers' billing keys: the gateway tokens that let us charge a card
// without the customer present. It issues keys at the gateway, stores their tokens encrypted with
// AES-256-GCM under a versioned key ring (the additional data binds each ciphertext to its row, so a
// ciphertext copied onto another customer's row does not decrypt), keeps one default key per customer,
// and hands a decrypted token out only for a charge. Nothing in this package returns, logs or marshals a
// token or key material; the API sees card display data only. Key rotation re-encrypts rows under the
// newest key version in small, lock-skipping batches so it can run beside live traffic.
//
// billing depends on the vault through billing.KeyVault; this package imports billing, never the reverse.
package billingkey
