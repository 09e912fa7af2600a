// Command pgsim serves the payment-gateway simulator (package gateway/pgsim): the Toss Payments v1 API
// plus the /__sim/ control API, for end-to-end runs and benchmarks of billingd against a misbehaving bank.
//
//	pgsim -addr 127.0.0.1:8091 -seed 1 -secret test_sk_sim -webhook-url http://127.0.0.1:8080/webhooks/sim
//
// Flags: -addr (env PGSIM_ADDR, default 127.0.0.1:8091), -seed, -secret (default test_sk_sim),
// -webhook-url, -v (log every request). Logs are slog JSON on stdout; SIGTERM or Ctrl-C shuts down
// gracefully, letting in-flight requests finish.
package main
