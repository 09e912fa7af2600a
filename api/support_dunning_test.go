package api_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// The HTTP side of a customer's dunning override (the behavior is tested in billing/dunning_override_test.go):
// support and admin only, 404 for an unknown customer, 422 naming every problem of an invalid policy, and
// answers the document describes (testenv checks each against api/openapi.json).
func TestSupportCustomerDunningEndpoints(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer(pgsim.BehaviorOK)
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub := res.JSON(t)["id"].(string)
	path := "/v1/support/customers/" + cus + "/dunning"

	res = env.Do("GET", path, testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	body := res.JSON(t)
	require.Equal(t, cus, body["customer_id"])
	require.Nil(t, body["override"])
	subs := body["subscriptions"].([]any)
	require.Len(t, subs, 1)
	first := subs[0].(map[string]any)
	require.Equal(t, sub, first["subscription_id"])
	require.Equal(t, "default", first["policy_source"])
	require.Equal(t, float64(4), first["policy"].(map[string]any)["max_retries"])

	// Roles: a service token may not read or change it.
	require.Equal(t, 403, env.Do("GET", path, testenv.ServiceToken, nil).Status)
	require.Equal(t, 403, env.Do("PUT", path, testenv.ServiceToken, map[string]any{"mode": "exempt", "reason": "x"}).Status)

	// Unknown customer.
	res = env.Do("GET", "/v1/support/customers/cus_nobody/dunning", testenv.SupportToken, nil)
	require.Equal(t, 404, res.Status, string(res.Body))
	res = env.Do("PUT", "/v1/support/customers/cus_nobody/dunning", testenv.SupportToken, map[string]any{"mode": "exempt", "reason": "x"})
	require.Equal(t, 404, res.Status, string(res.Body))

	// Invalid: every problem of the policy, a mode that does not exist, a missing reason.
	res = env.Do("PUT", path, testenv.SupportToken, map[string]any{"mode": "policy", "reason": "x",
		"policy": map[string]any{"max_retries": 99, "final_action": "forgive"}})
	require.Equal(t, 422, res.Status, string(res.Body))
	errs := res.JSON(t)["errors"].([]any)
	require.Len(t, errs, 2)
	require.Equal(t, "policy", errs[0].(map[string]any)["field"])
	require.Contains(t, errs[0].(map[string]any)["message"], "max_retries must be from 0 to 30")
	require.Contains(t, errs[1].(map[string]any)["message"], "final_action must be cancel or unpaid")
	require.Equal(t, 422, env.Do("PUT", path, testenv.SupportToken, map[string]any{"mode": "sometimes", "reason": "x"}).Status)
	require.Equal(t, 422, env.Do("PUT", path, testenv.SupportToken, map[string]any{"mode": "exempt"}).Status)
	require.Equal(t, 400, env.Do("PUT", path, testenv.SupportToken, map[string]any{"mode": "exempt", "reason": "x", "until": "never"}).Status)

	// Support sets a policy; admin exempts; the audit log has both.
	res = env.Do("PUT", path, testenv.SupportToken, map[string]any{"mode": "policy", "reason": "enterprise terms",
		"policy": map[string]any{"final_action": "unpaid"}})
	require.Equal(t, 200, res.Status, string(res.Body))
	body = res.JSON(t)
	require.Equal(t, "policy", body["override"].(map[string]any)["mode"])
	require.Equal(t, map[string]any{"final_action": "unpaid"}, body["override"].(map[string]any)["policy"])
	first = body["subscriptions"].([]any)[0].(map[string]any)
	require.Equal(t, "customer", first["policy_source"])
	require.Equal(t, "unpaid", first["policy"].(map[string]any)["final_action"])
	require.Contains(t, first["why"], "enterprise terms")

	res = env.Do("PUT", path, testenv.AdminToken, map[string]any{"mode": "exempt", "reason": "hardship"})
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, true, res.JSON(t)["subscriptions"].([]any)[0].(map[string]any)["exempt"])

	res = env.Do("GET", "/v1/support/audit?target_id="+cus, testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	rows := res.JSON(t)["data"].([]any)
	require.Len(t, rows, 2)
	require.Equal(t, "set-dunning-override", rows[1].(map[string]any)["action"])
	require.Equal(t, "admin", rows[1].(map[string]any)["role"])
}
