// Package gatewaytest is the contract every gateway adapter must pass, plus an in-process simulated
// gateway for other packages' tests.
//
// RunContract drives an adapter through every outcome the billing core relies on: issue accepted or
// refused, charge succeeded, soft and hard declines, a flaky card recovering, a charge committed whose
// answer was lost (Unknown, then Lookup finds exactly one charge), resends of a committed order, 5xx before
// and after the commit, "processing", rate limits, outages, cancel, the transaction list and webhooks. The
// adapter is checked against the bank's own ledger (Bank), so a test cannot pass by agreeing with itself.
// StartSim wires the toss adapter to an in-process pgsim for tests that need a gateway but are not about it.
package gatewaytest
