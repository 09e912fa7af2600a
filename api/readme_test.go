package api_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

// README's "A first subscription" shows what a fresh run answers. This runs the same requests on a fresh
// database and compares with the answers printed there, so the example cannot drift (it once showed a
// trial balance of 19800 where a run gives 39600: each paid invoice is posted twice, once when it is
// invoiced and once when it is paid).
func TestReadmeFirstSubscriptionAnswersAreTrue(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	readme := string(raw)
	shown := func(after string) []string { // the "# {...}" lines printed below the command containing after
		i := strings.Index(readme, after)
		require.GreaterOrEqual(t, i, 0, "README no longer shows %q", after)
		var out []string
		for _, line := range strings.Split(readme[i:], "\n")[1:] {
			if !strings.HasPrefix(line, "# {") {
				break
			}
			out = append(out, strings.TrimPrefix(line, "# "))
		}
		require.NotEmpty(t, out, "no answer printed after %q", after)
		return out
	}

	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer("ok")
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub := res.JSON(t)["id"].(string)
	env.Advance("744h")

	res = env.Do("GET", "/v1/invoices?subscription_id="+sub, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	var invoices struct {
		Data []struct {
			Kind   string `json:"kind"`
			Status string `json:"status"`
			Total  string `json:"total"`
		} `json:"data"`
	}
	res.Decode(t, &invoices)
	var got []string
	for _, inv := range invoices.Data {
		b, _ := json.Marshal(inv)
		got = append(got, string(b))
	}
	require.Equal(t, shown(`jq -c '.data[] | {kind, status, total}'`), got)

	res = env.Do("GET", "/v1/ledger/trial-balance", testenv.AdminToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	var tb struct {
		Balanced   bool `json:"balanced"`
		Currencies []struct {
			Currency string `json:"currency"`
			Debits   string `json:"debits"`
			Credits  string `json:"credits"`
		} `json:"currencies"`
	}
	res.Decode(t, &tb)
	b, err := json.Marshal(tb)
	require.NoError(t, err)
	require.Equal(t, shown(`jq -c '{balanced, currencies}'`), []string{string(b)})
}
