package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		res := env.Do("GET", path, "", nil)
		require.Equal(t, http.StatusOK, res.Status, path)
	}
	res := env.Do("GET", "/metrics", "", nil)
	require.Equal(t, http.StatusOK, res.Status)
	require.Contains(t, string(res.Body), "billing_http_requests_total")
}

func TestAuthErrorsAreProblems(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	cases := []struct {
		name, token string
		status      int
		code        string
	}{
		{"no token", "", 401, "unauthenticated"},
		{"bad token", "not-a-real-token-xxxxxx", 401, "invalid_token"},
		{"service may not read the test clock", testenv.ServiceToken, 403, "forbidden"},
		{"support may not read the test clock", testenv.SupportToken, 403, "forbidden"},
	}
	for _, c := range cases {
		res := env.Do("GET", "/v1/test-clock", c.token, nil)
		require.Equal(t, c.status, res.Status, c.name)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), c.name)
		p := res.JSON(t)
		require.Equal(t, c.code, p["code"], c.name)
		require.EqualValues(t, c.status, p["status"], c.name)
	}
}

func TestBadBodiesAreProblemsNeverServerErrors(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	big := `{"by": "` + strings.Repeat("x", 2<<20) + `"}`
	cases := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"unknown field", `{"by": "1h", "speed": 2}`, 400, "unknown_field"},
		{"malformed", `{"by": `, 400, "malformed_json"},
		{"wrong type", `{"by": 3600}`, 400, "malformed_json"},
		{"two objects", `{"by": "1h"}{"by": "1h"}`, 400, "malformed_json"},
		{"empty", ``, 400, "empty_body"},
		{"not an object", `[1,2]`, 400, "malformed_json"},
		{"oversized", big, 413, "body_too_large"},
		{"bad duration", `{"by": "soon"}`, 422, "validation_failed"},
	}
	for _, c := range cases {
		res := env.Do("POST", "/v1/test-clock/advance", testenv.AdminToken, c.body)
		require.Equal(t, c.status, res.Status, "%s: %s", c.name, res.Body)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), c.name)
		require.Equal(t, c.code, res.JSON(t)["code"], c.name)
	}
	res := env.Do("GET", "/v1/no-such-thing", testenv.AdminToken, nil)
	require.Equal(t, 404, res.Status)
	require.Equal(t, "route_not_found", res.JSON(t)["code"])
}

func TestTestClockMovesForwardOnly(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	var clock struct {
		Enabled bool      `json:"enabled"`
		Now     time.Time `json:"now"`
	}
	res := env.Do("GET", "/v1/test-clock", testenv.AdminToken, nil)
	require.Equal(t, 200, res.Status)
	res.Decode(t, &clock)
	require.True(t, clock.Enabled)
	start := clock.Now

	res = env.Do("POST", "/v1/test-clock/advance", testenv.AdminToken, `{"by": "720h"}`)
	require.Equal(t, 200, res.Status, string(res.Body))
	res.Decode(t, &clock)
	require.True(t, clock.Now.Equal(start.Add(720*time.Hour)))

	res = env.Do("POST", "/v1/test-clock/advance", testenv.AdminToken, map[string]any{"to": start})
	require.Equal(t, 422, res.Status)

	res = env.Do("POST", "/v1/test-clock/advance", testenv.AdminToken, map[string]any{"to": clock.Now})
	require.Equal(t, 200, res.Status, "advancing to now is a no-op")

	target := clock.Now.Add(48 * time.Hour)
	res = env.Do("POST", "/v1/test-clock/advance", testenv.AdminToken, map[string]any{"to": target})
	require.Equal(t, 200, res.Status)
	res.Decode(t, &clock)
	require.True(t, clock.Now.Equal(target))
}

func TestTestClockDisabledIs404(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Env: map[string]string{"BILLING_TEST_CLOCK": ""}})
	res := env.Do("GET", "/v1/test-clock", testenv.AdminToken, nil)
	require.Equal(t, 404, res.Status)
	require.Equal(t, "test_clock_disabled", res.JSON(t)["code"])
}

func TestWorkerRoleServesOnlyHealth(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Env: map[string]string{"BILLING_ROLE": "worker"}})
	require.Equal(t, 200, env.Do("GET", "/readyz", "", nil).Status)
	require.Equal(t, 404, env.Do("GET", "/v1/test-clock", testenv.AdminToken, nil).Status)
}
