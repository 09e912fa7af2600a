// Package stripemock runs github.com/stripe/stripe-mock for tests of the Stripe adapter.
//
// stripe-mock validates every request against Stripe's own OpenAPI spec, so a test that passes against it
// proves the adapter sends requests Stripe would accept: the right paths, parameter names, enum values
// and headers. It does not simulate money: responses are canned fixtures. The harness therefore starts
// it with the bundled fixtures patched into a happy path (the PaymentIntent succeeded and carries the
// order id FixtureOrderID, its charge points back at it), which lets tests assert the adapter's reading of
// a succeeded charge too. Declines, 5xx and 429 are not in stripe-mock's repertoire; adapter tests cover
// those with a small httptest server at the gateway boundary.
//
// One stripe-mock process serves the whole test binary (it takes about a second to load the spec), on an
// ephemeral loopback port, and Main stops it when the tests end.
package stripemock
