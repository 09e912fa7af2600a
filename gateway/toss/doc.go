// Package toss is the gateway.Gateway adapter for the Toss Payments REST API v1 (billing keys).
//
// The adapter speaks the wire format described in GATEWAYS.md and turns every answer into one of the
// port's outcomes. Its central job is to never mistake "we do not know" for "declined": transport errors,
// timeouts, 5xx, "processing" codes and merchant-side configuration errors all become Outcome{Kind:
// Unknown}, so the reconciler looks the order up instead of dunning a customer for our own trouble. Decline
// codes are classified hard or soft by the table in classify.go. The same adapter, named "sim", drives the
// pgsim simulator (package gateway/pgsim, cmd/pgsim), which follows the same wire format.
package toss
