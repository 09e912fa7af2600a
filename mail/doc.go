// Package mail sends customers the emails their billing owes them: a payment failed (soft: when the
// next retry is; hard: a new card is needed), a payment succeeded (with a receipt), the subscription is
// past due, suspended or ended for non-payment, the plan changed. Korean and English templates
// (html/template plus a text/template plain part), chosen by the customer's locale; a merchant can
// override any template from a directory and turn each kind off.
//
// Delivery mirrors the outgoing webhooks (package notify): billing hands every event to EventRecorded in
// the event's own transaction (a batch of renewals' events to EventsRecorded, one insert for the batch),
// which inserts one outbox row per (event, kind) — unique, so exactly one row exists when and only when
// the event committed. A leader-only periodic dispatcher enqueues a River
// ticket for every row that is due, and a sender claims the row (compare-and-set on its attempt count),
// fixes its Message-ID (derived from the row's id, before the SMTP transaction starts), sends it over
// SMTP and records the outcome: sent; a 4xx or a lost connection is retried on backoff; a 5xx marks it
// failed. Delivery is at least once, with a narrow window: a sender that dies after the server accepted
// the message and before the outcome is recorded leaves the row 'sending', and once its lease expires
// the row is sent again with the same Message-ID (docs/customer-emails.md says why this was chosen over
// at most once). Bookkeeping runs on the wall clock, like webhook retries; the emails' dates are domain
// time.
package mail
