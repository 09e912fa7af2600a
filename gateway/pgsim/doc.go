// Package pgsim is a payment-gateway simulator that speaks the Toss Payments v1 wire format.
//
// It is "the bank" in tests and load runs: it issues billing keys, approves or declines charges according
// to the behavior chosen by the auth key at issuance (ok, insufficient, limit, stolen, lost, expired,
// blocked, flaky-N), refuses the issue itself as Toss does for the auth keys of IssueRefusals (authkey-expired,
// authkey-used, authkey-unknown, authkey-method, authkey-customer, bad, reject...: the auth key or request;
// card-stolen, card-lost, card-expired, card-rejected, card-number, card-company: the card), keeps its own in-memory ledger of
// committed charges, and injects the faults real gateways have: latency, a charge committed whose answer is
// lost, 5xx before or after committing, "still processing", rate limits, outages, and webhooks that arrive
// zero to three times, late or out of order. Faults are drawn from a seeded generator so a run is
// reproducible. The ledger is indexed by order id and payment key, so the charge path stays O(1) under load.
//
// Toss API served: POST /v1/billing/authorizations/issue, POST /v1/billing/{billingKey},
// DELETE /v1/billing/{billingKey} (a deleted key is refused like one never issued: 404),
// GET /v1/payments/orders/{orderId}, GET /v1/payments/{paymentKey}, POST /v1/payments/{paymentKey}/cancel,
// GET /v1/transactions. A wrong secret key is 401 UNAUTHORIZED_KEY. A charge may carry `currency`, an
// extension Toss does not define (Toss billing is KRW only): KRW, USD, EUR or JPY (Currencies), anything
// else 400 INVALID_REQUEST. Idempotency-Key is honored on every POST: the same key and body replay the stored
// answer (even one the client never received), a different body is 422, a still-running original is 409.
//
// Card registration (register.go), as Toss's billing-auth window: GET /js/v1/payment is a stand-in for
// Toss's v1 SDK (TossPayments(clientKey).requestBillingAuth('카드', {customerKey, successUrl, failUrl})),
// which sends the browser to GET /billing-auth, a page where a person or a test enters a test card
// (TestCards: the number chooses the card's behavior, or a refusal that goes to failUrl with code and
// message). pgsim then redirects to successUrl with customerKey and a new authKey appended, and issues a
// billing key for that authKey only under its own customerKey (else NOT_MATCHES_CUSTOMER_KEY). The client
// key is Options.ClientKey (default DefaultClientKey, "test_ck_sim").
//
// Control API (JSON, no auth), mirrored by Go methods for in-process tests:
//
//	GET    /__sim/charges                          every committed charge            Charges()
//	GET    /__sim/charges/{orderId}                one charge                        Charge(orderID)
//	POST   /__sim/charges/{orderId}/plant          {amount, currency?, ...}          Plant(orderID, Plant)
//	GET    /__sim/billing-keys                     issued keys and behaviors         BillingKeys()
//	(Go only)                                      keys deleted by the merchant      DeletedBillingKeys()
//	POST   /__sim/billing-keys/{billingKey}/behavior {behavior}                      SetBehavior
//	POST   /__sim/customers/{customerKey}/behavior   {behavior}                      SetCustomerBehavior
//	POST   /__sim/billing-keys/{billingKey}/faults   ChargeFaults                    SetBillingKeyFaults
//	GET    /__sim/faults | POST (replace) | DELETE   Faults                          Faults/SetFaults/ClearFaults
//	GET    /__sim/webhooks                         webhook delivery log              Webhooks()
//	POST   /__sim/reset                            forget everything                 Reset()
//
// A Faults body looks like {"commit_then_timeout": {"count": 1}, "error_5xx_before_commit": {"probability":
// 0.1}, "latency": {"ms": 200, "probability": 0.5}, "processing": {"count": 1, "delay_ms": 50},
// "rate_limit_429": {"count": 1, "retry_after_seconds": 1}, "outage": {"for_ms": 5000}, "webhooks":
// {"copies": 2, "delay_ms": 100, "reorder": true}, "billing_keys": {"bk_sim_...": {...}}}.
package pgsim
