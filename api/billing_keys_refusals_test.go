package api_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// A card or auth key the gateway refuses is the client's problem, answered with the gateway's code and
// message: 402 for a declined card, 422 for a refused auth key or request. Retrying cannot help, so it is
// never 502 "retry with the same auth key".
func TestBillingKeyRefusalsAreTheClientsProblem(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	cus := newCustomer(t, env, "bk-refusals")
	base := "/v1/customers/" + cus + "/billing-keys"
	for _, r := range pgsim.IssueRefusals {
		res := env.Do("POST", base, testenv.ServiceToken, map[string]any{"gateway": "sim", "auth_key": r.Prefix + "-1", "customer_key": "ck-" + cus})
		p := res.JSON(t)
		switch r.Kind {
		case "card":
			require.Equal(t, 402, res.Status, "%s: %s", r.Prefix, res.Body)
			require.Equal(t, "card_declined", p["code"])
			require.Equal(t, r.Code, p["decline_code"])
			require.Contains(t, []any{"hard", "soft"}, p["decline_class"])
		default:
			require.Equal(t, 422, res.Status, "%s: %s", r.Prefix, res.Body)
			require.Equal(t, "auth_key_rejected", p["code"])
			require.NotEmpty(t, p["errors"])
		}
		require.Equal(t, r.Code, p["gateway_code"], r.Prefix)
		require.Equal(t, r.Message, p["gateway_message"], r.Prefix)
		require.Contains(t, p["detail"], r.Message, r.Prefix)
	}
	require.Empty(t, env.Do("GET", base, testenv.ServiceToken, nil).JSON(t)["data"], "no refusal left a key behind")
}

// Our own credentials refused (a rotated secret key) is ours to fix: 502, and the alert metric counts it.
func TestBillingKeyIssueWithRefusedCredentialsIs502AndCounted(t *testing.T) {
	t.Parallel()
	sim := pgsim.New(pgsim.Options{Seed: 1, SecretKey: "test_sk_the_gateway_has_now"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: sim}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	env := testenv.New(t, testenv.Options{SimURL: "http://" + ln.Addr().String()})
	cus := newCustomer(t, env, "bk-rotated")
	res := env.Do("POST", "/v1/customers/"+cus+"/billing-keys", testenv.ServiceToken, map[string]any{"gateway": "sim", "auth_key": "ok-1", "customer_key": "ck-1"})
	require.Equal(t, 502, res.Status, string(res.Body))
	require.Equal(t, "gateway_misconfigured", res.JSON(t)["code"])
	require.NotContains(t, string(res.Body), "test_sk_", "no secret in the answer")

	metrics := string(env.Do("GET", "/metrics", "", nil).Body)
	require.True(t, strings.Contains(metrics, `billing_gateway_merchant_refusals_total{code="UNAUTHORIZED_KEY",gateway="sim",method="issue_billing_key"} 1`), "the refusal is counted for the alert")
}
