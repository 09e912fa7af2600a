// Package notify delivers the events outbox to merchants' webhook endpoints. Billing writes every event
// in the transaction that causes it (the outbox); notify owns what happens next: the endpoints an admin
// registers (each with a signing secret shown once and stored only as key-ring ciphertext), the fan-out
// that turns each new event into one delivery row per subscribed endpoint, and the delivery itself — an
// HTTP POST signed Stripe-style with HMAC-SHA256 over a timestamp and the body, retried on exponential
// backoff until the endpoint answers 2xx or the attempts run out.
//
// The delivery row is the truth and a River job only its ticket: the fan-out and the retry dispatcher
// (one periodic job on the leader) enqueue a job for every delivery that is due, a job re-checks the
// row's attempt number before sending, and the outcome is compare-and-set on that number, so duplicate
// or lost jobs neither double-count nor strand a delivery. Delivery is at least once: receivers dedupe on
// the Billing-Event-Id header. Delivery timing (backoff, signature timestamps) runs on the wall clock: an
// HTTP retry is not domain time, so it behaves the same under the test clock.
package notify
