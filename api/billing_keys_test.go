package api_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// keysTranscript collects every response body, so the test can assert at the end that no raw billing key
// ever crossed the API.
type keysTranscript struct {
	env    *testenv.Env
	bodies []string
}

func (k *keysTranscript) do(method, path, token string, body any) testenv.Response {
	k.env.T.Helper()
	res := k.env.Do(method, path, token, body)
	k.bodies = append(k.bodies, string(res.Body))
	return res
}

func newCustomer(t *testing.T, env *testenv.Env, externalID string) string {
	t.Helper()
	res := env.Do("POST", "/v1/customers", testenv.ServiceToken, map[string]any{"external_id": externalID, "email": "kim@example.com", "name": "Kim"})
	require.Equal(t, 201, res.Status, string(res.Body))
	return res.JSON(t)["id"].(string)
}

// simTokens are the raw billing keys pgsim issued for a customer key.
func simTokens(t *testing.T, env *testenv.Env, customerKey string) []string {
	t.Helper()
	require.NotNil(t, env.App.Sim, "the embedded simulator")
	var out []string
	for _, k := range env.App.Sim.BillingKeys() {
		if k.CustomerKey == customerKey {
			out = append(out, k.BillingKey)
		}
	}
	return out
}

func TestBillingKeys(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	tr := &keysTranscript{env: env}
	cus := newCustomer(t, env, "bk-1")
	base := "/v1/customers/" + cus + "/billing-keys"

	res := tr.do("POST", base, testenv.ServiceToken, map[string]any{"gateway": "sim", "auth_key": "ok-first", "customer_key": "ck-" + cus})
	require.Equal(t, 201, res.Status, string(res.Body))
	first := res.JSON(t)
	require.Regexp(t, `^bk_[0-9a-z]{20}$`, first["id"])
	require.Equal(t, "sim", first["gateway"])
	require.Equal(t, true, first["is_default"])
	require.Equal(t, "active", first["status"])
	require.Equal(t, cus, first["customer_id"])
	card := first["card"].(map[string]any)
	require.NotEmpty(t, card["brand"])
	require.Contains(t, card["masked_number"], "*")
	require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`, first["created_at"])

	res = tr.do("POST", base, testenv.ServiceToken, map[string]any{"gateway": "sim", "auth_key": "insufficient-2", "customer_key": "ck-" + cus})
	require.Equal(t, 201, res.Status, string(res.Body))
	second := res.JSON(t)
	require.Equal(t, false, second["is_default"], "only the first key becomes default")

	tokens := simTokens(t, env, "ck-"+cus)
	require.Len(t, tokens, 2)

	// List, as support too, in pages.
	res = tr.do("GET", base, testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	list := res.JSON(t)
	require.Nil(t, list["next_cursor"])
	require.ElementsMatch(t, []any{first, second}, list["data"])

	res = tr.do("GET", base+"?limit=1", testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status)
	page1 := res.JSON(t)
	require.Len(t, page1["data"], 1)
	require.NotNil(t, page1["next_cursor"])
	res = tr.do("GET", base+"?limit=1&cursor="+page1["next_cursor"].(string), testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status)
	page2 := res.JSON(t)
	require.Nil(t, page2["next_cursor"])
	// The test clock stands still, so both keys share created_at and the id breaks the tie.
	require.ElementsMatch(t, []any{first, second}, append(page1["data"].([]any), page2["data"].([]any)...))
	require.Equal(t, 422, tr.do("GET", base+"?limit=0", testenv.ServiceToken, nil).Status)

	// Make the second default.
	res = tr.do("POST", base+"/"+second["id"].(string)+"/default", testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, true, res.JSON(t)["is_default"])
	res = tr.do("GET", base, testenv.ServiceToken, nil)
	defaults := map[string]bool{}
	for _, k := range res.JSON(t)["data"].([]any) {
		defaults[k.(map[string]any)["id"].(string)] = k.(map[string]any)["is_default"].(bool)
	}
	require.Equal(t, map[string]bool{first["id"].(string): false, second["id"].(string): true}, defaults)

	// Revoke it: soft delete, idempotent, and a revoked key cannot become default.
	res = tr.do("DELETE", base+"/"+second["id"].(string), testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	revoked := res.JSON(t)
	require.Equal(t, "revoked", revoked["status"])
	require.Equal(t, false, revoked["is_default"])
	require.NotNil(t, revoked["revoked_at"])
	res = tr.do("DELETE", base+"/"+second["id"].(string), testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status)
	require.Equal(t, revoked, res.JSON(t))
	res = tr.do("POST", base+"/"+second["id"].(string)+"/default", testenv.ServiceToken, nil)
	require.Equal(t, 409, res.Status, string(res.Body))
	require.Equal(t, "billing_key_revoked", res.JSON(t)["code"])
	res = tr.do("GET", base, testenv.ServiceToken, nil)
	require.Len(t, res.JSON(t)["data"], 2, "revoked keys stay listed")

	// A key of another customer is not found through this one.
	other := newCustomer(t, env, "bk-2")
	otherBase := "/v1/customers/" + other + "/billing-keys"
	res = tr.do("POST", otherBase+"/"+first["id"].(string)+"/default", testenv.ServiceToken, nil)
	require.Equal(t, 404, res.Status)
	require.Equal(t, "billing_key_not_found", res.JSON(t)["code"])
	require.Equal(t, 404, tr.do("DELETE", otherBase+"/"+first["id"].(string), testenv.ServiceToken, nil).Status)
	res = tr.do("GET", otherBase, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status)
	require.Empty(t, res.JSON(t)["data"])
	require.Equal(t, 404, tr.do("DELETE", base+"/bk_missing", testenv.ServiceToken, nil).Status)

	// Unknown customers.
	res = tr.do("POST", "/v1/customers/cus_missing/billing-keys", testenv.ServiceToken, map[string]any{"gateway": "sim", "auth_key": "ok", "customer_key": "ck"})
	require.Equal(t, 404, res.Status)
	require.Equal(t, "customer_not_found", res.JSON(t)["code"])
	require.Equal(t, 404, tr.do("GET", "/v1/customers/cus_missing/billing-keys", testenv.ServiceToken, nil).Status)

	for _, body := range tr.bodies {
		for _, tok := range tokens {
			require.NotContains(t, body, tok, "a raw billing key crossed the API")
		}
	}
	for _, tok := range tokens {
		testenv.AssertNoSecretInDB(t, env.App.Pool, tok)
	}
}

func TestBillingKeyInputErrors(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	cus := newCustomer(t, env, "bk-err")
	base := "/v1/customers/" + cus + "/billing-keys"

	res := env.Do("POST", base, testenv.ServiceToken, map[string]any{"gateway": "stripe", "auth_key": "ok", "customer_key": "ck"})
	require.Equal(t, 422, res.Status, string(res.Body))
	p := res.JSON(t)
	require.Equal(t, "validation_failed", p["code"])
	require.Equal(t, "gateway", p["errors"].([]any)[0].(map[string]any)["field"], "stripe is not enabled here")

	res = env.Do("POST", base, testenv.ServiceToken, map[string]any{"gateway": "sim"})
	require.Equal(t, 422, res.Status)
	fields := map[string]bool{}
	for _, e := range res.JSON(t)["errors"].([]any) {
		fields[e.(map[string]any)["field"].(string)] = true
	}
	require.Equal(t, map[string]bool{"auth_key": true, "customer_key": true}, fields)

	res = env.Do("POST", base, testenv.ServiceToken, map[string]any{"gateway": "sim", "auth_key": "reject-this-card", "customer_key": "ck"})
	require.Equal(t, 422, res.Status, string(res.Body))
	p = res.JSON(t)
	require.Equal(t, "auth_key_rejected", p["code"])
	require.Equal(t, "auth_key", p["errors"].([]any)[0].(map[string]any)["field"])

	res = env.Do("POST", base, testenv.ServiceToken, map[string]any{"gateway": "sim", "auth_key": "ok", "customer_key": "ck", "card_number": "4111"})
	require.Equal(t, 400, res.Status, "unknown fields are refused")

	// The gateway down or throttling is never a 500 and never stores a key.
	env.App.Sim.SetFaults(pgsim.Faults{Outage: &pgsim.OutageFault{}})
	res = env.Do("POST", base, testenv.ServiceToken, map[string]any{"gateway": "sim", "auth_key": "ok", "customer_key": "ck"})
	require.Equal(t, 502, res.Status, string(res.Body))
	require.Equal(t, "gateway_unavailable", res.JSON(t)["code"])
	env.App.Sim.SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{RateLimit429: &pgsim.RateLimitFault{Rule: pgsim.Rule{Count: 1}}}})
	res = env.Do("POST", base, testenv.ServiceToken, map[string]any{"gateway": "sim", "auth_key": "ok", "customer_key": "ck"})
	require.Equal(t, 503, res.Status, string(res.Body))
	require.Equal(t, "gateway_unavailable", res.JSON(t)["code"])
	env.App.Sim.ClearFaults()

	res = env.Do("GET", base, testenv.ServiceToken, nil)
	require.Empty(t, res.JSON(t)["data"], "no failed issuance left a key behind")

	// Auth and roles.
	require.Equal(t, 401, env.Do("GET", base, "", nil).Status)
	require.Equal(t, 401, env.Do("POST", base, "wrong_token_0123456789", map[string]any{"gateway": "sim", "auth_key": "ok", "customer_key": "ck"}).Status)
	require.Equal(t, 403, env.Do("POST", base, testenv.SupportToken, map[string]any{"gateway": "sim", "auth_key": "ok", "customer_key": "ck"}).Status)
	require.Equal(t, 403, env.Do("DELETE", base+"/bk_x", testenv.SupportToken, nil).Status)
	require.Equal(t, 403, env.Do("POST", base+"/bk_x/default", testenv.SupportToken, nil).Status)
	require.Equal(t, 201, env.Do("POST", base, testenv.AdminToken, map[string]any{"gateway": "sim", "auth_key": "ok", "customer_key": "ck"}).Status, "admin may do everything")
}

// A key issue whose answer was lost (the process was killed after the key was stored) is retried with the
// same Idempotency-Key: the retry runs the handler again and answers with the key the first run stored,
// not a second copy of the card. The same key with another card is still a different request.
func TestBillingKeyIssueRetriedAfterTheAnswerWasLost(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	cus := env.CreateCustomer()
	body := map[string]any{"gateway": "sim", "auth_key": "ok-lost", "customer_key": "ck-" + cus}
	res := env.Do("POST", "/v1/customers/"+cus+"/billing-keys", testenv.ServiceToken, body, "Idempotency-Key: card-1")
	require.Equal(t, 201, res.Status, string(res.Body))
	first := res.JSON(t)["id"]

	// What a kill between the commit and storing the answer leaves behind.
	require.Equal(t, 1, env.LoseAnswer("card-1"))

	again := env.Do("POST", "/v1/customers/"+cus+"/billing-keys", testenv.ServiceToken, body, "Idempotency-Key: card-1")
	require.Equal(t, 201, again.Status, string(again.Body))
	require.Empty(t, again.Header.Get("Idempotent-Replayed"), "the handler ran again")
	require.Equal(t, first, again.JSON(t)["id"])
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM billing_keys WHERE customer_id = $1`, cus))

	replay := env.Do("POST", "/v1/customers/"+cus+"/billing-keys", testenv.ServiceToken, body, "Idempotency-Key: card-1")
	require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	require.Equal(t, first, replay.JSON(t)["id"])
	other := env.Do("POST", "/v1/customers/"+cus+"/billing-keys", testenv.ServiceToken,
		map[string]any{"gateway": "sim", "auth_key": "ok-other", "customer_key": "ck-" + cus}, "Idempotency-Key: card-1")
	require.Equal(t, 422, other.Status, string(other.Body))
	require.Equal(t, "idempotency_key_reused", other.JSON(t)["code"])
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM billing_keys WHERE customer_id = $1`, cus))
}
