package api_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

// Every mutation of a subscription honors If-Match: the ETag a read answered with lets the change
// through once; after that the stale ETag is 412 and changes nothing.
func TestIfMatchOnSubscriptionMutations(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	bigger := env.CreatePlan("19900", "KRW", "month", 1)
	cus := env.Customer("ok")
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub := res.JSON(t)["id"].(string)

	read := env.Do("GET", "/v1/subscriptions/"+sub, testenv.ServiceToken, nil)
	require.Equal(t, 200, read.Status)
	tag := read.Header.Get("ETag")
	require.Regexp(t, `^"[1-9][0-9]*"$`, tag)
	version := read.JSON(t)["version"]

	refused := func(path string, body any, ifMatch string) {
		t.Helper()
		res := env.Do("POST", "/v1/subscriptions/"+sub+path, testenv.ServiceToken, body, "If-Match: "+ifMatch)
		require.Equal(t, 412, res.Status, "%s If-Match %s: %s", path, ifMatch, res.Body)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
		require.Equal(t, "precondition_failed", res.JSON(t)["code"])
		require.Equal(t, version, env.Subscription(sub)["version"], "a refused change changes nothing")
	}
	for _, stale := range []string{`"999"`, `W/` + tag, `"x"`} {
		refused("/pause", nil, stale)
		refused("/cancel", map[string]any{"at_period_end": true}, stale)
		refused("/change-plan", map[string]any{"plan_id": bigger}, stale)
	}

	// The current ETag lets the change through, and the answer carries the new one.
	res = env.Do("POST", "/v1/subscriptions/"+sub+"/cancel", testenv.ServiceToken, map[string]any{"at_period_end": true}, "If-Match: "+tag)
	require.Equal(t, 200, res.Status, string(res.Body))
	newTag := res.Header.Get("ETag")
	require.NotEqual(t, tag, newTag)
	version = res.JSON(t)["version"]

	// The old ETag is now stale for every other action.
	refused("/resume-cancel", nil, tag)
	refused("/pause", nil, tag)
	res = env.Do("POST", "/v1/subscriptions/"+sub+"/resume-cancel", testenv.ServiceToken, nil, "If-Match: "+newTag)
	require.Equal(t, 200, res.Status, string(res.Body))
	pauseTag := res.Header.Get("ETag")
	res = env.Do("POST", "/v1/subscriptions/"+sub+"/pause", testenv.ServiceToken, nil, "If-Match: "+pauseTag)
	require.Equal(t, 200, res.Status, string(res.Body))
	version = res.JSON(t)["version"]
	refused("/resume", nil, pauseTag)
	res = env.Do("POST", "/v1/subscriptions/"+sub+"/resume", testenv.ServiceToken, nil, "If-Match: *")
	require.Equal(t, 200, res.Status, string(res.Body))

	// Without If-Match there is no precondition.
	res = env.Do("POST", "/v1/subscriptions/"+sub+"/change-plan", testenv.ServiceToken, map[string]any{"plan_id": bigger})
	require.Equal(t, 200, res.Status, string(res.Body))
	env.RequireBalanced()
}
