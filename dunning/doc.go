// Package dunning decides what happens after a charge fails: when to retry (exponential backoff with
// jitter), when to stop (hard declines, the per-card cap, exhausted retries), how long the grace period
// lasts, and what the final action is. It is pure policy: billing asks, dunning answers, and the answers
// depend only on their inputs (time and randomness are passed in), so every schedule is testable.
//
// Gateway trouble (timeouts, 5xx, an open circuit, rate limits) is not customer delinquency: it has its own
// short technical backoff that never consumes a retry.
//
// The service-wide policy can come from a YAML or JSON file (LoadPolicyFile, BILLING_DUNNING_POLICY) and a
// plan can override it (Policies.For); both are read strictly, so a typo is an error rather than a silently
// ignored key. Timeline is a policy's nominal schedule; devtools/timelinesvg draws it for docs/dunning-timeline.svg.
package dunning
