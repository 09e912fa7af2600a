package api_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

// Error paths outside the handlers answer problem+json too: unknown routes, wrong methods, and input the
// database would have refused after validation.
func TestRoutingAndOverflowErrorsAreProblems(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	cases := []struct {
		method, path, token string
		body                any
		status              int
		code                string
		allow               string
	}{
		{"GET", "/nope", "", nil, 404, "route_not_found", ""},
		{"GET", "/v1/nope", testenv.AdminToken, nil, 404, "route_not_found", ""},
		{"DELETE", "/v1/customers", testenv.AdminToken, nil, 405, "method_not_allowed", "POST"},
		{"PUT", "/healthz", "", nil, 405, "method_not_allowed", "GET"},
		{"POST", "/openapi.json", "", nil, 405, "method_not_allowed", "GET"},
		{"PUT", "/v1/customers/cus_x/billing-keys", testenv.AdminToken, nil, 405, "method_not_allowed", "GET, POST"},
		// 20 digits: more than the ledger's numeric(20, 4) holds. It used to reach the database as a 500.
		{"POST", "/v1/plans", testenv.AdminToken, map[string]any{"code": "big", "name": "Big", "amount": "99999999999999999999",
			"currency": "KRW", "interval": "month"}, 422, "validation_failed", ""},
	}
	for _, c := range cases {
		res := env.Do(c.method, c.path, c.token, c.body)
		name := c.method + " " + c.path
		require.Equal(t, c.status, res.Status, "%s: %s", name, res.Body)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), name)
		p := res.JSON(t)
		require.Equal(t, c.code, p["code"], name)
		require.EqualValues(t, c.status, p["status"], name)
		require.NotContains(t, strings.ToLower(string(res.Body)), "goroutine", name)
		require.Equal(t, c.allow, res.Header.Get("Allow"), name)
	}
}
