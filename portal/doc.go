// Package portal is the customer's side of dunning: the signed, expiring links that open a customer's
// page without a login (Signer), what that page shows and does (Service: subscriptions, open invoices and
// "pay now", change card through the gateway's own registration flow), and receipts as documents
// (Receipts: an HTML view and a PDF with an embedded Korean font).
//
// It owns no money rules: "pay now" is billing's retry (one in-flight attempt per invoice, the same
// fences as support's retry) and a new card is billingkey's issue (the new key becomes the default and
// the open invoices are retried in its transaction), exactly as the REST API's new-card path does. The
// HTTP pages are in portal/web.
package portal
