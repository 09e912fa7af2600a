// Package moneyprop holds the property-based state-machine test of the money side of billing (issue 18):
// random sequences of subscribes, renewals, declines and recoveries, refunds, credit notes, customer credit
// and plan changes against a whole billingd (app/testenv: real Postgres, real HTTP stack, pgsim at the
// gateway), with the ledger's invariants checked after every step. It is its own package so its run has its
// own `go test` budget apart from billing's. The package has no code besides this comment; see
// moneyprop_test.go and docs/money.md ("The property test").
package moneyprop
