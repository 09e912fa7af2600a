package stripemock_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/devtools/stripemock"
)

func TestMain(m *testing.M) { stripemock.Main(m) }

func TestStartServesPatchedFixtures(t *testing.T) {
	t.Parallel()
	base := stripemock.Start(t)
	require.Equal(t, base, stripemock.Start(t), "one process per test binary")

	req, err := http.NewRequest(http.MethodGet, base+"/v1/payment_intents/"+stripemock.FixturePaymentIntentID, nil)
	require.NoError(t, err)
	req.SetBasicAuth("sk_test_x", "")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var pi struct {
		Status   string            `json:"status"`
		Metadata map[string]string `json:"metadata"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&pi))
	require.Equal(t, "succeeded", pi.Status)
	require.Equal(t, stripemock.FixtureOrderID, pi.Metadata["order_id"])
}

func TestStripeMockRejectsUnknownParameters(t *testing.T) {
	t.Parallel()
	base := stripemock.Start(t)
	req, err := http.NewRequest(http.MethodGet, base+"/v1/charges?no_such_param=1", nil)
	require.NoError(t, err)
	req.SetBasicAuth("sk_test_x", "")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "stripe-mock must validate requests against the spec")
}
