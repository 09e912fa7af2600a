// Package stripe is the Stripe adapter of the gateway port, built on stripe-go v82.
//
// A billing key is a Stripe Customer with a saved card PaymentMethod; its token is "cus_...|pm_...". A
// charge is a PaymentIntent created with confirm=true and off_session=true, carrying the order id in
// metadata (Stripe copies it to the Charge) and the attempt's IdempotencyKey as Stripe's Idempotency-Key.
// Outcomes follow the port's three-way rule: succeeded is Succeeded; a card_error or a
// requires_payment_method intent is Declined, classed hard or soft by Classify (a table of Stripe decline
// codes, overridden by Stripe's advice_code); processing, 5xx, idempotency conflicts, timeouts and
// transport errors are Unknown; a 429 is a *gateway.TryLaterError because Stripe processed nothing.
// Lookup uses the PaymentIntent search API, which is eventually consistent (see Lookup). Webhooks are
// verified against the Stripe-Signature header with a 300 s tolerance and an injectable clock.
//
// Each Adapter owns its stripe-go client and backend; the package never sets stripe-go's globals.
package stripe
