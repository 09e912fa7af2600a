package api_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// Revoking a key deletes it at the gateway too: the deletion is a job enqueued with the revocation, retried
// until the gateway confirms (here the first try meets a 5xx), and then the local ciphertext is destroyed.
// The gateway refuses any later charge of the token.
func TestRevokedKeyIsDeletedAtTheGatewayAndItsCiphertextDestroyed(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	cus := newCustomer(t, env, "bk-gw-delete")
	base := "/v1/customers/" + cus + "/billing-keys"
	res := env.Do("POST", base, testenv.ServiceToken, map[string]any{"gateway": "sim", "auth_key": "ok-del", "customer_key": "ck-" + cus})
	require.Equal(t, 201, res.Status, string(res.Body))
	keyID := res.JSON(t)["id"].(string)
	tokens := simTokens(t, env, "ck-"+cus)
	require.Len(t, tokens, 1)
	token := tokens[0]
	env.Sim().SetBillingKeyFaults(token, pgsim.ChargeFaults{Error5xxBeforeCommit: &pgsim.Rule{Count: 1}})

	res = env.Do("DELETE", base+"/"+keyID, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "revoked", res.JSON(t)["status"])

	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM billing_keys WHERE id = $1 AND gateway_deleted_at IS NOT NULL AND ciphertext IS NULL`, keyID) == 1
	}, 60*time.Second, 50*time.Millisecond, "deleted at the gateway and the ciphertext destroyed")
	// River records the job's completion just after the work returns.
	require.Eventually(t, func() bool {
		return env.QueryInt(`SELECT count(*) FROM river_job WHERE kind = 'billing_key_gateway_delete'
			AND state = 'completed' AND coalesce(array_length(errors, 1), 0) = 1`) == 1
	}, 10*time.Second, 20*time.Millisecond, "the first try failed and was retried")
	require.Empty(t, simTokens(t, env, "ck-"+cus), "the gateway has no key left")
	deleted := env.Sim().DeletedBillingKeys()
	require.Len(t, deleted, 1)
	require.Equal(t, token, deleted[0].BillingKey)

	var listed map[string]any
	for _, k := range env.Do("GET", base, testenv.ServiceToken, nil).JSON(t)["data"].([]any) {
		listed = k.(map[string]any)
	}
	require.NotNil(t, listed["gateway_deleted_at"])

	// Whoever holds the token can no longer charge it.
	gw, ok := env.App.Gateways.Get("sim")
	require.True(t, ok)
	before := len(env.Sim().Charges())
	out, err := gw.Charge(context.Background(), gateway.ChargeRequest{BillingKey: gateway.NewBillingKeyToken(token),
		CustomerKey: "ck-" + cus, OrderID: "after-delete-1", IdempotencyKey: "after-delete-1", Amount: decimal.NewFromInt(1000),
		Currency: "KRW", OrderName: "after delete"})
	require.NoError(t, err)
	require.NotEqual(t, gateway.Succeeded, out.Kind)
	require.Len(t, env.Sim().Charges(), before)

	// Revoking again changes nothing and sends nothing.
	res = env.Do("DELETE", base+"/"+keyID, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Len(t, env.Sim().DeletedBillingKeys(), 1)
}

// The deletion is enqueued in the revoking transaction: an API process that commits the revocation and
// dies before any worker ran loses nothing; a worker started later deletes the key at the gateway.
func TestGatewayDeletionSurvivesAProcessThatNeverRanTheJob(t *testing.T) {
	t.Parallel()
	sim := pgsim.New(pgsim.Options{Seed: 1, SecretKey: "test_sk_sim"})
	hs := httptest.NewServer(sim)
	t.Cleanup(func() { hs.Close(); sim.Close() })
	api := testenv.New(t, testenv.Options{SimURL: hs.URL, Env: map[string]string{"BILLING_ROLE": "api"}})
	cus := newCustomer(t, api, "bk-gw-delete-crash")
	base := "/v1/customers/" + cus + "/billing-keys"
	res := api.Do("POST", base, testenv.ServiceToken, map[string]any{"gateway": "sim", "auth_key": "ok-del", "customer_key": "ck-" + cus})
	require.Equal(t, 201, res.Status, string(res.Body))
	keyID := res.JSON(t)["id"].(string)
	require.Equal(t, 200, api.Do("DELETE", base+"/"+keyID, testenv.ServiceToken, nil).Status)
	require.Equal(t, 1, api.QueryInt(`SELECT count(*) FROM river_job WHERE kind = 'billing_key_gateway_delete' AND state = 'available'`))
	require.Equal(t, 1, api.QueryInt(`SELECT count(*) FROM billing_keys WHERE id = $1 AND ciphertext IS NOT NULL AND gateway_deleted_at IS NULL`, keyID))
	require.Len(t, sim.BillingKeys(), 1, "not deleted at the gateway yet")
	api.Stop()

	worker := testenv.New(t, testenv.Options{DBURL: api.DBURL, SimURL: hs.URL, Env: map[string]string{"BILLING_ROLE": "worker"}})
	require.Eventually(t, func() bool {
		return worker.QueryInt(`SELECT count(*) FROM billing_keys WHERE id = $1 AND gateway_deleted_at IS NOT NULL AND ciphertext IS NULL`, keyID) == 1
	}, 60*time.Second, 50*time.Millisecond)
	require.Len(t, sim.DeletedBillingKeys(), 1)
}
