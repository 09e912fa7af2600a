package api_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

func TestCustomers(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)

	res := env.Do("POST", "/v1/customers", testenv.ServiceToken, map[string]any{"external_id": "u-1", "email": "kim@example.com", "name": "Kim"})
	require.Equal(t, 201, res.Status, string(res.Body))
	c := res.JSON(t)
	require.Regexp(t, `^cus_[0-9a-z]{20}$`, c["id"])
	require.Equal(t, "u-1", c["external_id"])
	require.Equal(t, map[string]any{"state": "none", "days_delinquent": 0.0, "amounts_due": []any{}}, c["delinquency"])

	res = env.Do("GET", "/v1/customers/"+c["id"].(string), testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status)
	require.Equal(t, c["email"], res.JSON(t)["email"])

	res = env.Do("POST", "/v1/customers", testenv.ServiceToken, map[string]any{"external_id": "u-1", "email": "lee@example.com", "name": "Lee"})
	require.Equal(t, 409, res.Status)
	require.Equal(t, "external_id_taken", res.JSON(t)["code"])

	res = env.Do("POST", "/v1/customers", testenv.ServiceToken, map[string]any{"external_id": "", "email": "nope", "name": ""})
	require.Equal(t, 422, res.Status)
	p := res.JSON(t)
	require.Len(t, p["errors"], 3)

	require.Equal(t, 404, env.Do("GET", "/v1/customers/cus_missing", testenv.ServiceToken, nil).Status)
	require.Equal(t, 403, env.Do("POST", "/v1/customers", testenv.SupportToken, map[string]any{"external_id": "x", "email": "a@b.co", "name": "n"}).Status)
}
