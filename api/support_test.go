package api_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// The HTTP side of the support endpoints: bodies are decoded strictly, errors are problem documents with
// the fields named, 409s carry "allowed", answers carry an ETag. (The actions' behavior is tested in
// billing/support_test.go, through this same API.)
func TestSupportEndpointsSpeakTheAPIConventions(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer(pgsim.BehaviorOK)
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub := res.JSON(t)["id"].(string)
	res = env.Do("GET", "/v1/invoices?subscription_id="+sub, testenv.SupportToken, nil)
	inv := res.JSON(t)["data"].([]any)[0].(map[string]any)["id"].(string) // paid

	post := func(path string, body any, headers ...string) testenv.Response {
		return env.Do("POST", "/v1/support"+path, testenv.SupportToken, body, headers...)
	}
	problem := func(res testenv.Response, status int, code string) map[string]any {
		t.Helper()
		require.Equal(t, status, res.Status, string(res.Body))
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
		p := res.JSON(t)
		require.Equal(t, code, p["code"])
		return p
	}

	problem(post("/invoices/"+inv+"/void", map[string]any{"reason": "x", "note": "y"}), 400, "unknown_field")
	problem(post("/invoices/"+inv+"/void", `{"reason": 7}`), 400, "malformed_json")
	problem(post("/invoices/"+inv+"/void", nil), 400, "empty_body")
	problem(post("/invoices/"+inv+"/void", `{"reason":"x"}`, "Content-Type: text/plain"), 415, "unsupported_content_type")
	p := problem(post("/invoices/"+inv+"/void", map[string]any{"reason": " "}), 422, "validation_failed")
	require.Equal(t, "reason", p["errors"].([]any)[0].(map[string]any)["field"])
	problem(post("/subscriptions/"+sub+"/extend-grace", map[string]any{"reason": "x", "until": "next friday"}), 400, "malformed_json")
	p = problem(post("/subscriptions/"+sub+"/extend-grace", map[string]any{"reason": "x"}), 422, "validation_failed")
	require.Equal(t, "until", p["errors"].([]any)[0].(map[string]any)["field"])
	problem(post("/subscriptions/"+sub+"/resume-dunning", map[string]any{"reason": "x", "until": time.Now().Add(time.Hour)}), 422, "validation_failed")
	problem(env.Do("GET", "/v1/support/delinquent?min_days=soon", testenv.SupportToken, nil), 422, "validation_failed")
	problem(env.Do("GET", "/v1/support/audit?cursor=nonsense", testenv.SupportToken, nil), 422, "validation_failed")

	// Illegal states: 409 naming the state, with the support actions that state allows.
	p = problem(post("/invoices/"+inv+"/write-off", map[string]any{"reason": "x"}), 409, "illegal_state_transition")
	require.Equal(t, []any{}, p["allowed"])
	require.Contains(t, p["detail"], "paid")
	p = problem(post("/subscriptions/"+sub+"/pause-dunning", map[string]any{"reason": "x"}), 409, "illegal_state_transition")
	require.Equal(t, []any{"cancel"}, p["allowed"], "an active subscription has no dunning to pause")
	require.Equal(t, "active", p["state"])

	// A no-op still answers with the resource and its version.
	res = post("/invoices/"+inv+"/retry", map[string]any{"reason": "check"})
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	require.NotEmpty(t, res.Header.Get("ETag"))
	res = post("/subscriptions/"+sub+"/resume-dunning", map[string]any{"reason": "check"})
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, sub, res.JSON(t)["id"])
	require.Equal(t, fmt.Sprintf(`"%v"`, res.JSON(t)["version"]), res.Header.Get("ETag"))

	// Lists are API.md's envelope.
	for _, path := range []string{"/v1/support/delinquent", "/v1/support/audit"} {
		res := env.Do("GET", path, testenv.SupportToken, nil)
		require.Equal(t, 200, res.Status)
		require.Equal(t, map[string]any{"data": []any{}, "next_cursor": nil}, res.JSON(t), path)
	}
}
