package api_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

// outcomes fires n identical requests at once and sorts the answers.
type outcomes struct {
	fresh    []testenv.Response // answered by the handler
	replayed []testenv.Response // the stored answer
	inUse    int                // 409 idempotency_key_in_use
	other    []testenv.Response
}

func fireConcurrently(t *testing.T, env *testenv.Env, n int, method, path, token string, body any, headers ...string) outcomes {
	t.Helper()
	res := make([]testenv.Response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res[i] = env.Do(method, path, token, body, headers...)
		})
	}
	close(start)
	wg.Wait()
	var o outcomes
	for _, r := range res {
		switch {
		case r.Header.Get("Idempotent-Replayed") == "true":
			o.replayed = append(o.replayed, r)
		case r.Status == http.StatusConflict && r.JSON(t)["code"] == "idempotency_key_in_use":
			o.inUse++
		case r.Status < 300 || r.Status == http.StatusPaymentRequired:
			o.fresh = append(o.fresh, r)
		default:
			o.other = append(o.other, r)
		}
	}
	return o
}

func TestIdempotencyFiftyConcurrentCreatesMakeOneCustomer(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	body := map[string]any{"external_id": "idem-50", "email": "fifty@example.com", "name": "Fifty"}
	o := fireConcurrently(t, env, 50, "POST", "/v1/customers", testenv.ServiceToken, body, "Idempotency-Key: create-fifty")

	require.Empty(t, o.other, "every answer is the first one, a replay of it, or in_use")
	require.Len(t, o.fresh, 1)
	require.Equal(t, 201, o.fresh[0].Status)
	require.Equal(t, 50, 1+len(o.replayed)+o.inUse)
	for _, r := range o.replayed {
		require.Equal(t, 201, r.Status)
		require.JSONEq(t, string(o.fresh[0].Body), string(r.Body))
	}
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM customers WHERE external_id = 'idem-50'`))

	// Once it is done, the key answers every retry with the stored response.
	res := env.Do("POST", "/v1/customers", testenv.ServiceToken, body, "Idempotency-Key: create-fifty")
	require.Equal(t, 201, res.Status)
	require.Equal(t, "true", res.Header.Get("Idempotent-Replayed"))
	require.JSONEq(t, string(o.fresh[0].Body), string(res.Body))
}

func TestIdempotencyFiftyConcurrentSubscribesChargeOnce(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer("ok")
	body := map[string]any{"customer_id": cus, "plan_id": plan}
	o := fireConcurrently(t, env, 50, "POST", "/v1/subscriptions", testenv.ServiceToken, body, "Idempotency-Key: sub-once")

	require.Empty(t, o.other)
	require.Len(t, o.fresh, 1)
	require.Equal(t, 201, o.fresh[0].Status, string(o.fresh[0].Body))
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM subscriptions WHERE customer_id = $1`, cus))
	charges := env.ChargesAtGateway()
	require.Len(t, charges, 1, "one order charged: %v", charges)
	for order, n := range charges {
		require.Equal(t, 1, n, order)
	}
	res := env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, body, "Idempotency-Key: sub-once")
	require.Equal(t, "true", res.Header.Get("Idempotent-Replayed"))
	require.Equal(t, o.fresh[0].Header.Get("ETag"), res.Header.Get("ETag"))
	require.JSONEq(t, string(o.fresh[0].Body), string(res.Body))
	env.RequireBalanced()
}

func TestIdempotencyReplayAfterRestart(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	body := map[string]any{"external_id": "restart-1", "email": "r@example.com", "name": "R"}
	first := env.Do("POST", "/v1/customers", testenv.ServiceToken, body, "Idempotency-Key: survives")
	require.Equal(t, 201, first.Status, string(first.Body))
	env.Stop()

	again := testenv.New(t, testenv.Options{DBURL: env.DBURL})
	res := again.Do("POST", "/v1/customers", testenv.ServiceToken, body, "Idempotency-Key: survives")
	require.Equal(t, 201, res.Status)
	require.Equal(t, "true", res.Header.Get("Idempotent-Replayed"))
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	require.JSONEq(t, string(first.Body), string(res.Body))
	require.Equal(t, 1, again.QueryInt(`SELECT count(*) FROM customers`))
}

func TestIdempotencyKeyReusedWithAnotherBody(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	res := env.Do("POST", "/v1/customers", testenv.ServiceToken,
		map[string]any{"external_id": "a", "email": "a@example.com", "name": "A"}, "Idempotency-Key: k")
	require.Equal(t, 201, res.Status)
	res = env.Do("POST", "/v1/customers", testenv.ServiceToken,
		map[string]any{"external_id": "b", "email": "b@example.com", "name": "B"}, "Idempotency-Key: k")
	require.Equal(t, 422, res.Status)
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	require.Equal(t, "idempotency_key_reused", res.JSON(t)["code"])
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM customers`))
}

func TestIdempotencyKeysAreScopedPerTokenMethodAndPath(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	key := "Idempotency-Key: shared"
	res := env.Do("POST", "/v1/customers", testenv.ServiceToken,
		map[string]any{"external_id": "s1", "email": "s1@example.com", "name": "S1"}, key)
	require.Equal(t, 201, res.Status)
	cus := res.JSON(t)["id"].(string)

	// Another token, same path and key, another body: its own scope, so it runs (not a 422 reuse).
	res = env.Do("POST", "/v1/customers", testenv.AdminToken,
		map[string]any{"external_id": "s2", "email": "s2@example.com", "name": "S2"}, key)
	require.Equal(t, 201, res.Status, string(res.Body))
	require.Empty(t, res.Header.Get("Idempotent-Replayed"))

	// Same token and key, another path: runs too.
	res = env.Do("POST", "/v1/customers/"+cus+"/billing-keys", testenv.ServiceToken,
		map[string]any{"gateway": "sim", "auth_key": "ok-scoped", "customer_key": "ck-" + cus}, key)
	require.Equal(t, 201, res.Status, string(res.Body))
	require.Empty(t, res.Header.Get("Idempotent-Replayed"))
	require.Equal(t, 2, env.QueryInt(`SELECT count(*) FROM customers`))
}

func TestIdempotencyStoresClientErrors(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	bad := map[string]any{"external_id": "", "email": "nope", "name": ""}
	first := env.Do("POST", "/v1/customers", testenv.ServiceToken, bad, "Idempotency-Key: bad-1")
	require.Equal(t, 422, first.Status)
	res := env.Do("POST", "/v1/customers", testenv.ServiceToken, bad, "Idempotency-Key: bad-1")
	require.Equal(t, 422, res.Status)
	require.Equal(t, "true", res.Header.Get("Idempotent-Replayed"))
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	require.JSONEq(t, string(first.Body), string(res.Body))

	// A key longer than 255 characters is refused before anything runs.
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'x'
	}
	res = env.Do("POST", "/v1/customers", testenv.ServiceToken,
		map[string]any{"external_id": "z", "email": "z@example.com", "name": "Z"}, "Idempotency-Key: "+string(long))
	require.Equal(t, 422, res.Status)
	require.Equal(t, "idempotency_key_invalid", res.JSON(t)["code"])
	require.Zero(t, env.QueryInt(`SELECT count(*) FROM customers`))
}
