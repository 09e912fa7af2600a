// Package jobs runs billing's scheduled work on River: one worker per kind of due work (renewal,
// collection retry, attempt lookup, grace end, dunning end, incomplete expiry), a leader-only sweeper that
// re-enqueues anything due whose job is gone, and the test-clock advancer. It holds no business rules:
// every worker calls one billing method, and every job is idempotent because the table row, not the job,
// says what is due.
package jobs
