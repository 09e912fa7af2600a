package billing_test

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// A client whose POST /v1/subscriptions was cut off retries it with the same Idempotency-Key. Whatever
// point the first run died at — before the gateway call, after the gateway took the money, after the
// outcome was recorded — the retry answers with the one subscription the first run opened, and the card
// is charged once. The retry runs on another replica of the same database, as after a real crash.
func TestSubscribeRetriedAfterACrashOpensAndChargesOnce(t *testing.T) {
	t.Parallel()
	for _, p := range chargeCrashPoints {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			var fail atomic.Bool
			sim := pgsim.New(pgsim.Options{Seed: 1, SecretKey: "test_sk_sim"})
			simURL := serve(t, sim)
			first := testenv.New(t, testenv.Options{SimURL: simURL, App: app.Options{Hooks: p.hooks(&fail)}})
			plan := first.CreatePlan("9900", "KRW", "month", 1)
			cus := first.Customer(pgsim.BehaviorOK)
			body := map[string]any{"customer_id": cus, "plan_id": plan}

			fail.Store(true)
			res := first.Do("POST", "/v1/subscriptions", testenv.ServiceToken, body, "Idempotency-Key: signup-1")
			require.GreaterOrEqual(t, res.Status, 500, "the failpoint cuts the request off: %s", res.Body)
			first.Stop()

			second := testenv.New(t, testenv.Options{DBURL: first.DBURL, SimURL: simURL})
			// The 5xx released the key; the same key with another body is still not a new request.
			other := map[string]any{"customer_id": cus, "plan_id": plan, "quantity": 2}
			res = second.Do("POST", "/v1/subscriptions", testenv.ServiceToken, other, "Idempotency-Key: signup-1")
			require.Equal(t, 422, res.Status, string(res.Body))
			require.Equal(t, "idempotency_key_reused", res.JSON(t)["code"])
			require.Equal(t, 0, second.QueryInt(`SELECT count(*) FROM subscriptions WHERE quantity = 2`))

			res = second.Do("POST", "/v1/subscriptions", testenv.ServiceToken, body, "Idempotency-Key: signup-1")
			require.Equal(t, 201, res.Status, string(res.Body))
			sub := res.JSON(t)
			require.Equal(t, "active", sub["status"])
			require.Equal(t, 1, second.QueryInt(`SELECT count(*) FROM subscriptions WHERE customer_id = $1`, cus))
			require.Len(t, sim.Charges(), 1, "one charge at the gateway")
			require.Equal(t, 0, second.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status IN ('pending', 'unknown')`))

			// The answer is stored now: asking again replays it.
			again := second.Do("POST", "/v1/subscriptions", testenv.ServiceToken, body, "Idempotency-Key: signup-1")
			require.Equal(t, 201, again.Status)
			require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
			require.Equal(t, sub["id"], again.JSON(t)["id"])
			second.RequireBalanced()
		})
	}
}

// The other way a request is cut off: the process is killed after everything committed and before the
// answer was stored. The key is left in progress with its lock lapsed; the retry takes it over, runs the
// handler again and finds the subscription the first run made (a declined one here: 402 again, no second
// charge attempt).
func TestSubscribeRetriedAfterTheAnswerWasLost(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	for _, c := range []struct {
		behavior string
		status   int
	}{{pgsim.BehaviorOK, 201}, {pgsim.BehaviorStolen, 402}} {
		cus := env.Customer(c.behavior)
		body := map[string]any{"customer_id": cus, "plan_id": plan}
		key := "Idempotency-Key: lost-" + c.behavior
		res := env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, body, key)
		require.Equal(t, c.status, res.Status, string(res.Body))
		attempts := env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE customer_id = $1`, cus)
		require.Equal(t, 1, attempts)

		// What a kill between the commit and storing the answer leaves behind.
		require.Equal(t, 1, env.LoseAnswer("lost-"+c.behavior))

		again := env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, body, key)
		require.Equal(t, c.status, again.Status, string(again.Body))
		require.Empty(t, again.Header.Get("Idempotent-Replayed"), "the handler ran again")
		require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM subscriptions WHERE customer_id = $1`, cus))
		require.Equal(t, attempts, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE customer_id = $1`, cus))
	}
	require.Len(t, env.Sim().Charges(), 1, "only the ok card was charged, once")
	env.RequireBalanced()
}

// A key is remembered for the retention (24 h of wall time), by the API and by the subscription alike;
// after that the same key is a new request, as API.md says, and opens a new subscription.
func TestSubscribeKeyIsForgottenAfterTheRetention(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer(pgsim.BehaviorOK)
	body := map[string]any{"customer_id": cus, "plan_id": plan}
	first := env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, body, "Idempotency-Key: yearly")
	require.Equal(t, 201, first.Status, string(first.Body))

	// A day and a bit later the reaper has deleted the key; the subscription's record of it is as old.
	env.QueryInt(`WITH d AS (DELETE FROM idempotency_keys WHERE key = 'yearly' RETURNING 1) SELECT count(*) FROM d`)
	env.QueryInt(`WITH u AS (UPDATE subscription_creations SET created_at = now() - interval '25 hours' RETURNING 1) SELECT count(*) FROM u`)

	again := env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, body, "Idempotency-Key: yearly")
	require.Equal(t, 201, again.Status, string(again.Body))
	require.NotEqual(t, first.JSON(t)["id"], again.JSON(t)["id"])
	require.Equal(t, 2, env.QueryInt(`SELECT count(*) FROM subscriptions WHERE customer_id = $1`, cus))
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM subscription_creations WHERE subscription_id = $1`, again.JSON(t)["id"]),
		"the forgotten record was replaced by the new one")
	require.Len(t, env.Sim().Charges(), 2)
	env.RequireBalanced()
}
