package api_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// currencyEnv runs billingd with two gateways on one simulator: "sim" (the toss adapter configured with
// pgsim's currencies: KRW, USD, EUR, JPY) and "toss" (the toss adapter as it is for the real Toss: KRW
// only). A USD plan on a toss key is a combination no charge can ever collect.
func currencyEnv(t *testing.T) (*testenv.Env, *pgsim.Server) {
	t.Helper()
	sim := pgsim.New(pgsim.Options{Seed: 1, SecretKey: "test_sk_sim"})
	hs := httptest.NewServer(sim)
	t.Cleanup(func() { hs.Close(); sim.Close() })
	env := testenv.New(t, testenv.Options{SimURL: hs.URL, Env: map[string]string{
		"BILLING_GATEWAYS": "sim,toss", "TOSS_API_URL": hs.URL, "TOSS_SECRET_KEY": "test_sk_sim"}})
	return env, sim
}

func addKeyAt(t *testing.T, env *testenv.Env, cus, gw, authKey string) testenv.Response {
	t.Helper()
	return env.Do("POST", "/v1/customers/"+cus+"/billing-keys", testenv.ServiceToken,
		map[string]any{"gateway": gw, "auth_key": authKey, "customer_key": "ck-" + cus})
}

func requireCurrencyRefused(t *testing.T, res testenv.Response, gw, currency, field string) map[string]any {
	t.Helper()
	require.Equal(t, 422, res.Status, string(res.Body))
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	p := res.JSON(t)
	require.Equal(t, "currency_not_supported", p["code"], p)
	require.Equal(t, "https://dunningworks.dev/problems/currency_not_supported", p["type"])
	require.Equal(t, gw, p["gateway"])
	require.Equal(t, currency, p["currency"])
	errs := p["errors"].([]any)
	require.Len(t, errs, 1)
	require.Equal(t, field, errs[0].(map[string]any)["field"])
	return p
}

func TestSubscribeRefusesAPlanTheDefaultKeysGatewayCannotCharge(t *testing.T) {
	t.Parallel()
	env, sim := currencyEnv(t)
	usd := env.CreatePlan("12.50", "USD", "month", 1)
	krw := env.CreatePlan("9900", "KRW", "month", 1)
	cus := newCustomer(t, env, "cur-sub")
	res := addKeyAt(t, env, cus, "toss", "ok-toss")
	require.Equal(t, 201, res.Status, string(res.Body))
	require.Equal(t, true, res.JSON(t)["is_default"])

	res = env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, map[string]any{"customer_id": cus, "plan_id": usd})
	requireCurrencyRefused(t, res, "toss", "USD", "plan_id")
	// A trial is refused too: its first renewal would be charged on the same key.
	res = env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, map[string]any{"customer_id": cus, "plan_id": usd, "trial_days": 14})
	requireCurrencyRefused(t, res, "toss", "USD", "plan_id")
	require.Zero(t, env.QueryInt(`SELECT count(*) FROM subscriptions WHERE customer_id = $1`, cus), "nothing was created")
	require.Zero(t, env.QueryInt(`SELECT count(*) FROM invoices WHERE customer_id = $1`, cus))
	require.Empty(t, sim.Charges(), "nothing reached the gateway")

	res = env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, map[string]any{"customer_id": cus, "plan_id": krw})
	require.Equal(t, 201, res.Status, "a KRW plan on the toss key is fine: %s", res.Body)

	// The simulator's own gateway takes USD: the same plan on a sim key subscribes.
	other := newCustomer(t, env, "cur-sub-sim")
	require.Equal(t, 201, addKeyAt(t, env, other, "sim", "ok-sim").Status)
	res = env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, map[string]any{"customer_id": other, "plan_id": usd})
	require.Equal(t, 201, res.Status, string(res.Body))
	require.Equal(t, "active", res.JSON(t)["status"])
}

func TestDefaultAndBackupKeyRefuseAGatewayThatCannotChargeALiveSubscription(t *testing.T) {
	t.Parallel()
	env, _ := currencyEnv(t)
	usd := env.CreatePlan("12.50", "USD", "month", 1)
	cus := newCustomer(t, env, "cur-default")
	res := addKeyAt(t, env, cus, "sim", "ok-sim")
	require.Equal(t, 201, res.Status, string(res.Body))
	simKey := res.JSON(t)["id"].(string)
	res = env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, map[string]any{"customer_id": cus, "plan_id": usd})
	require.Equal(t, 201, res.Status, string(res.Body))
	subID := res.JSON(t)["id"].(string)

	// A second card at Toss is stored (the sim card stays the default: the customer is not delinquent) ...
	res = addKeyAt(t, env, cus, "toss", "ok-toss")
	require.Equal(t, 201, res.Status, string(res.Body))
	tossKey := res.JSON(t)
	require.Equal(t, false, tossKey["is_default"])
	keys := "/v1/customers/" + cus + "/billing-keys/"

	// ... but it cannot become the card that pays a USD subscription.
	res = env.Do("POST", keys+tossKey["id"].(string)+"/default", testenv.ServiceToken, nil)
	p := requireCurrencyRefused(t, res, "toss", "USD", "key_id")
	require.Equal(t, subID, p["subscription_id"])
	res = env.Do("POST", keys+tossKey["id"].(string)+"/backup", testenv.ServiceToken, nil)
	requireCurrencyRefused(t, res, "toss", "USD", "key_id")
	require.Equal(t, simKey, defaultKeyOf(t, env, cus), "the default is unchanged")

	// Once the USD subscription has ended, nothing stands in the way.
	res = env.Do("POST", "/v1/subscriptions/"+subID+"/cancel", testenv.ServiceToken, map[string]any{"at_period_end": false, "reason": "moving to KRW"})
	require.Equal(t, 200, res.Status, string(res.Body))
	res = env.Do("POST", keys+tossKey["id"].(string)+"/default", testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, true, res.JSON(t)["is_default"])
}

func defaultKeyOf(t *testing.T, env *testenv.Env, cus string) string {
	t.Helper()
	var id string
	require.NoError(t, env.App.Pool.QueryRow(context.Background(),
		`SELECT coalesce((SELECT id FROM billing_keys WHERE customer_id = $1 AND is_default), '')`, cus).Scan(&id))
	return id
}

// A key that would become the default is checked before the gateway is asked to issue it: the auth key is
// not spent and nothing is left issued at the gateway.
func TestRegisteringAKeyThatWouldPayInACurrencyItsGatewayCannotChargeIsRefused(t *testing.T) {
	t.Parallel()
	env, sim := currencyEnv(t)
	usd := env.CreatePlan("12.50", "USD", "month", 1)
	cus := newCustomer(t, env, "cur-issue")
	res := env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, map[string]any{"customer_id": cus, "plan_id": usd, "trial_days": 14})
	require.Equal(t, 201, res.Status, "a trial needs no key yet: %s", res.Body)
	subID := res.JSON(t)["id"].(string)

	res = addKeyAt(t, env, cus, "toss", "ok-toss")
	p := requireCurrencyRefused(t, res, "toss", "USD", "gateway")
	require.Equal(t, subID, p["subscription_id"])
	for _, k := range sim.BillingKeys() {
		require.NotEqual(t, "ck-"+cus, k.CustomerKey, "the gateway was not asked to issue the key")
	}
	require.Zero(t, env.QueryInt(`SELECT count(*) FROM billing_keys WHERE customer_id = $1`, cus))

	res = addKeyAt(t, env, cus, "sim", "ok-sim")
	require.Equal(t, 201, res.Status, string(res.Body))
	require.Equal(t, true, res.JSON(t)["is_default"])
	// A second card that would not become the default is stored as a spare.
	res = addKeyAt(t, env, cus, "toss", "ok-toss-2")
	require.Equal(t, 201, res.Status, string(res.Body))
	require.Equal(t, false, res.JSON(t)["is_default"])
}

// Plans of one subscription share a currency, so a plan change can only meet a bad combination made before
// these checks existed (here forced in the database): moving it onto another plan is refused too.
func TestChangePlanRefusesAPlanTheDefaultKeysGatewayCannotCharge(t *testing.T) {
	t.Parallel()
	env, _ := currencyEnv(t)
	usd := env.CreatePlan("12.50", "USD", "month", 1)
	usdPlus := env.CreatePlan("20.00", "USD", "month", 1)
	cus := newCustomer(t, env, "cur-change")
	require.Equal(t, 201, addKeyAt(t, env, cus, "sim", "ok-sim").Status)
	res := env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, map[string]any{"customer_id": cus, "plan_id": usd})
	require.Equal(t, 201, res.Status, string(res.Body))
	subID := res.JSON(t)["id"].(string)
	res = addKeyAt(t, env, cus, "toss", "ok-toss")
	require.Equal(t, 201, res.Status, string(res.Body))
	tossKey := res.JSON(t)["id"].(string)
	_, err := env.App.Pool.Exec(context.Background(),
		`UPDATE billing_keys SET is_default = (id = $2) WHERE customer_id = $1`, cus, tossKey)
	require.NoError(t, err)

	res = env.Do("POST", "/v1/subscriptions/"+subID+"/change-plan", testenv.ServiceToken, map[string]any{"plan_id": usdPlus})
	requireCurrencyRefused(t, res, "toss", "USD", "plan_id")
	require.True(t, strings.Contains(res.JSON(t)["detail"].(string), tossKey), "the detail names the key")
	require.Equal(t, usd, readSubscription(t, env, subID).PlanID, "the plan did not change")
}
