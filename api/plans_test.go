package api_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

// A second plan with a taken code is 409 plan_code_taken and names the existing plan, so a client
// whose first request died after committing (see docs/idempotency.md, "Crashes") can carry on with it.
func TestPlanCodeTakenNamesTheExistingPlan(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	body := map[string]any{"code": "basic-monthly", "name": "Basic", "amount": "9900", "currency": "KRW", "interval": "month", "interval_count": 1}
	res := env.Do("POST", "/v1/plans", testenv.AdminToken, body)
	require.Equal(t, 201, res.Status, string(res.Body))
	id := res.JSON(t)["id"]

	res = env.Do("POST", "/v1/plans", testenv.AdminToken, body)
	require.Equal(t, 409, res.Status, string(res.Body))
	p := res.JSON(t)
	require.Equal(t, "plan_code_taken", p["code"])
	require.Equal(t, id, p["plan_id"])
}
