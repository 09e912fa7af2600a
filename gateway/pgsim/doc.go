// Package pgsim is a payment-gateway simulator that speaks the Toss Payments v1 wire format.
//
// It is "the bank" in tests and load runs: it issues billing keys, approves or declines charges according
// to the behavior chosen by the auth key at issuance (ok, insufficient, stolen, expired, flaky-N, ...),
// keeps its own in-memory ledger of committed charges, and injects the faults real gateways have: latency,
// a charge committed whose answer is lost, 5xx before or after committing, "still processing", rate limits,
// outages, and webhooks that arrive zero to three times, late or out of order. Faults are drawn from a
// seeded generator so a run is reproducible. Tests assert what the bank saw through the Go methods
// (Charges, SetFaults, SetBehavior, ...) or the JSON control API under /__sim/; cmd/pgsim serves it as a
// process. The ledger is indexed by order id and payment key, so the charge path stays O(1) under load.
package pgsim
