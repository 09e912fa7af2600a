// Package billing owns customers, plans, subscriptions, invoices, payment attempts and the ledger: what
// is owed, what was collected, and the renewal machinery that turns time into invoices and invoices into
// charges.
//
// The charge path keeps three promises. No database transaction spans a gateway call: an attempt (with
// its deterministic order id and idempotency key) is committed before the gateway is called, and the
// outcome is recorded in a new transaction. An unknown outcome is never a failure: it is resolved by
// looking the order up, and resending the same attempt is always safe because the gateway refuses a
// second charge for one order id. And every money movement posts a balanced ledger transaction in the
// same database transaction as the state change that causes it.
package billing
