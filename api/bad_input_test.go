package api_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

// Hostile input found from outside: NUL bytes and invalid UTF-8 anywhere a client can put text used to
// reach Postgres (SQLSTATE 22021, a 500) or be stored as U+FFFD. Each is a 4xx that says what to fix, and
// nothing is stored.
func TestHostileTextIsRefusedWithA4xx(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	svc, sup, adm := testenv.ServiceToken, testenv.SupportToken, testenv.AdminToken
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer("insufficient")
	res := env.Subscribe(cus, plan)
	require.Equal(t, 402, res.Status, string(res.Body))
	sub, inv := res.JSON(t)["subscription_id"].(string), res.JSON(t)["invoice_id"].(string)

	type fieldCase struct {
		method, path, token, body, field string
	}
	nul := `a\u0000b`
	bodies := []fieldCase{
		{"POST", "/v1/customers", svc, `{"external_id":"` + nul + `","email":"n@example.com","name":"N"}`, "external_id"},
		{"POST", "/v1/customers", svc, `{"external_id":"nul-name","email":"n@example.com","name":"` + nul + `"}`, "name"},
		{"POST", "/v1/plans", adm, `{"code":"nul","name":"` + nul + `","amount":"1","currency":"KRW","interval":"month"}`, "name"},
		{"POST", "/v1/subscriptions", svc, `{"customer_id":"cus_` + nul + `","plan_id":"` + plan + `"}`, "customer_id"},
		{"POST", "/v1/subscriptions", svc, `{"customer_id":"` + cus + `","plan_id":"plan_` + nul + `"}`, "plan_id"},
		{"POST", "/v1/subscriptions/" + sub + "/cancel", svc, `{"at_period_end":true,"reason":"` + nul + `"}`, "reason"},
		{"POST", "/v1/support/invoices/" + inv + "/mark-paid", sup, `{"reason":"cash","reference":"` + nul + `","amount":"9900"}`, "reference"},
		{"POST", "/v1/subscriptions/" + sub + "/change-plan", svc, `{"plan_id":"` + nul + `"}`, "plan_id"},
		// Invalid UTF-8: raw bytes, and an unpaired surrogate escape (encoding/json turns both into U+FFFD).
		{"POST", "/v1/customers", svc, "{\"external_id\":\"bad-utf8\",\"email\":\"u@example.com\",\"name\":\"caf\xe9\"}", "name"},
		{"POST", "/v1/customers", svc, `{"external_id":"bad-surrogate","email":"u@example.com","name":"x\ud800y"}`, "name"},
		// A billing key with invalid UTF-8 is refused here, not sent to the gateway to come back a 502.
		{"POST", "/v1/customers/" + cus + "/billing-keys", svc, "{\"gateway\":\"sim\",\"auth_key\":\"ok-\xff\xfe\",\"customer_key\":\"ck-1\"}", "auth_key"},
		{"POST", "/v1/customers/" + cus + "/billing-keys", svc, `{"gateway":"sim","auth_key":"ok-1","customer_key":"ck-\udfff"}`, "customer_key"},
		{"POST", "/v1/customers/" + cus + "/billing-keys", svc, `{"gateway":"sim","auth_key":"ok-` + nul + `","customer_key":"ck-1"}`, "auth_key"},
	}
	for _, c := range bodies {
		res := env.Do(c.method, c.path, c.token, c.body)
		name := c.method + " " + c.path + " " + c.body
		require.Equal(t, 422, res.Status, "%s: %s", name, res.Body)
		p := res.JSON(t)
		require.Equal(t, "validation_failed", p["code"], name)
		require.Equal(t, c.field, p["errors"].([]any)[0].(map[string]any)["field"], name)
	}
	require.Zero(t, env.QueryInt(`SELECT count(*) FROM customers WHERE external_id IN ('nul-name', 'bad-utf8', 'bad-surrogate')`))
	require.Zero(t, env.QueryInt(`SELECT count(*) FROM customers WHERE name LIKE '%'||chr(65533)||'%'`), "nothing stored as U+FFFD")
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM billing_keys WHERE customer_id = $1`, cus), "no key issued")

	// A U+FFFD the client really sent is text like any other.
	res = env.Do("POST", "/v1/customers", svc, `{"external_id":"real-fffd","email":"r@example.com","name":"a\ufffd�"}`)
	require.Equal(t, 201, res.Status, string(res.Body))
	require.Equal(t, "a\ufffd\ufffd", res.JSON(t)["name"])

	// Path ids: no resource has such an id.
	for _, c := range []struct{ method, path, token string }{
		{"GET", "/v1/customers/%00", svc},
		{"GET", "/v1/customers/cus_%FF", svc},
		{"GET", "/v1/subscriptions/sub_%00x", svc},
		{"GET", "/v1/invoices/%00", sup},
		{"GET", "/v1/plans/plan_%C0%AF", svc},
		{"POST", "/v1/subscriptions/%00/cancel", svc},
		{"POST", "/v1/support/invoices/inv_%00/void", sup},
		{"GET", "/v1/customers/" + cus + "/billing-keys/%00", svc},
	} {
		var body any
		if c.method == "POST" {
			body = map[string]any{"reason": "x"}
		}
		res := env.Do(c.method, c.path, c.token, body)
		require.Contains(t, []int{404, 405}, res.Status, "%s %s: %s", c.method, c.path, res.Body)
	}

	// Query filters.
	for _, path := range []string{
		"/v1/invoices?status=%00", "/v1/invoices?customer_id=cus_%FF", "/v1/invoices?subscription_id=%00",
		"/v1/support/delinquent?gateway=%00", "/v1/support/delinquent?decline_class=%FE", "/v1/support/audit?actor=%00",
		"/v1/support/audit?target_id=%C3", "/v1/plans?cursor=%00", "/v1/invoices?%00=1",
	} {
		res := env.Do("GET", path, sup, nil)
		require.Equal(t, 400, res.Status, "%s: %s", path, res.Body)
		require.Equal(t, "invalid_query", res.JSON(t)["code"], path)
	}
	env.RequireBalanced()
}

// The smaller defects of the same trial: amounts, lengths, interval counts, media types, messages.
func TestInputRulesSayWhatTheContractSays(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	svc, adm := testenv.ServiceToken, testenv.AdminToken
	planBody := func(code string, extra map[string]any) map[string]any {
		b := map[string]any{"code": code, "name": "P " + code, "amount": "9900", "currency": "KRW", "interval": "month"}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	fieldOf := func(res testenv.Response) string {
		return res.JSON(t)["errors"].([]any)[0].(map[string]any)["field"].(string)
	}

	// API.md: more decimals than the currency has is 422, zeros included.
	for _, amount := range []string{"9900.00", "9900.0", "9900."} {
		res := env.Do("POST", "/v1/plans", adm, planBody("krw-decimals", map[string]any{"amount": amount}))
		require.Equal(t, 422, res.Status, "%s: %s", amount, res.Body)
		require.Equal(t, "amount", fieldOf(res))
	}
	res := env.Do("POST", "/v1/plans", adm, planBody("usd-3", map[string]any{"amount": "12.500", "currency": "USD"}))
	require.Equal(t, 422, res.Status, string(res.Body))
	res = env.Do("POST", "/v1/plans", adm, planBody("usd-2", map[string]any{"amount": "12.50", "currency": "USD"}))
	require.Equal(t, 201, res.Status, string(res.Body))

	// interval_count: the spec's minimum is 1; absent means 1; 0 is not quietly turned into 1.
	res = env.Do("POST", "/v1/plans", adm, planBody("count-0", map[string]any{"interval_count": 0}))
	require.Equal(t, 422, res.Status, string(res.Body))
	require.Equal(t, "interval_count", fieldOf(res))
	res = env.Do("POST", "/v1/plans", adm, planBody("count-absent", nil))
	require.Equal(t, 201, res.Status, string(res.Body))
	require.EqualValues(t, 1, res.JSON(t)["interval_count"])

	// Lengths are characters: 255 Hangul syllables (765 bytes) fit "at most 255 characters"; 256 do not.
	hangul := strings.Repeat("가", 255)
	res = env.Do("POST", "/v1/customers", svc, map[string]any{"external_id": "hangul-1", "email": "h@example.com", "name": hangul})
	require.Equal(t, 201, res.Status, string(res.Body))
	require.Equal(t, hangul, res.JSON(t)["name"])
	res = env.Do("POST", "/v1/customers", svc, map[string]any{"external_id": strings.Repeat("나", 255), "email": "h2@example.com", "name": "H"})
	require.Equal(t, 201, res.Status, string(res.Body))
	res = env.Do("POST", "/v1/customers", svc, map[string]any{"external_id": "hangul-2", "email": "h3@example.com", "name": hangul + "가"})
	require.Equal(t, 422, res.Status, string(res.Body))
	require.Equal(t, "name", fieldOf(res))
	res = env.Do("POST", "/v1/plans", adm, planBody("hangul", map[string]any{"name": hangul}))
	require.Equal(t, 201, res.Status, string(res.Body))

	// A body that is not JSON by its Content-Type is 415; JSON with parameters is JSON.
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/jsonx", "multipart/form-data; boundary=x"} {
		res := env.Do("POST", "/v1/customers", svc, map[string]any{"external_id": "ct", "email": "ct@example.com", "name": "CT"}, "Content-Type: "+ct)
		require.Equal(t, 415, res.Status, "%s: %s", ct, res.Body)
		require.Equal(t, "unsupported_content_type", res.JSON(t)["code"], ct)
	}
	res = env.Do("POST", "/v1/customers", svc, map[string]any{"external_id": "ct-utf8", "email": "ct@example.com", "name": "CT"},
		"Content-Type: application/json; charset=utf-8")
	require.Equal(t, 201, res.Status, string(res.Body))

	// The 403 names the roles that may call the endpoint, and nothing else.
	res = env.Do("POST", "/v1/plans", svc, planBody("forbidden", nil))
	require.Equal(t, 403, res.Status, string(res.Body))
	require.Equal(t, "role service may not call this endpoint (allowed: admin)", res.JSON(t)["detail"])
	res = env.Do("GET", "/v1/support/delinquent", svc, nil)
	require.Equal(t, 403, res.Status, string(res.Body))
	require.Equal(t, "role service may not call this endpoint (allowed: admin, support)", res.JSON(t)["detail"])
}
