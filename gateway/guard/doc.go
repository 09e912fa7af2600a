// Package guard protects the service, and each payment gateway, from the other's bad day.
//
// Wrap decorates any gateway.Gateway with four protections, configured per gateway: a bulkhead that caps
// calls in flight (a call waits for a slot as long as its ctx allows), a token-bucket rate limit
// (golang.org/x/time/rate; a call waits briefly for a token, or is refused with the wait as RetryAfter),
// a circuit breaker (sony/gobreaker) that opens after consecutive Unknown outcomes or errors of Charge
// and Lookup and lets one probe through after a cooldown, and a per-call timeout. A declined charge is a
// success for the breaker: the gateway answered. Every refusal is a *gateway.TryLaterError returned
// without calling the gateway, so the request was certainly not sent; callers snooze the job, and a
// refusal never counts as a decline or advances dunning.
package guard
