package billing_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// The merchant rotated its secret key at the gateway and billingd still has the old one. Every charge is
// refused before it is processed: the attempt fails with the gateway's code and is never resent (no
// technical -> unknown -> not found -> resend loop), dunning does not move, the refusal is counted for the
// alert, and once the key is fixed the next technical retry collects.
func TestRotatedSecretKeyFailsTheAttemptWithoutAResendLoop(t *testing.T) {
	t.Parallel()
	sim := pgsim.New(pgsim.Options{Seed: 1, SecretKey: "test_sk_sim"})
	simURL := serve(t, sim)
	first := testenv.New(t, testenv.Options{SimURL: simURL})
	plan := first.CreatePlan("9900", "KRW", "month", 1)
	cus := first.Customer("ok")
	res := first.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	subID := res.JSON(t)["id"].(string)
	first.Stop()

	stale := testenv.New(t, testenv.Options{DBURL: first.DBURL, SimURL: simURL,
		Env: map[string]string{"BILLING_SIM_SECRET": "test_sk_before_rotation"}})
	stale.AdvanceToRenewal(subID, time.Minute)
	stale.Advance("24h")

	invs := invoicesOf(t, stale, subID)
	require.Len(t, invs, 2)
	require.Equal(t, "open", invs[1]["status"])
	atts := invs[1]["attempts"].([]any)
	require.GreaterOrEqual(t, len(atts), 2, "the invoice is retried on the technical backoff")
	require.LessOrEqual(t, len(atts), 30, "a day of technical retries capped at an hour, not a tight loop")
	for _, a := range atts {
		a := a.(map[string]any)
		require.Equal(t, "failed", a["status"], "a refused charge ends, it is not looked up and resent: %v", a)
		require.Contains(t, a["failure_reason"], "UNAUTHORIZED_KEY")
		require.Nil(t, a["decline_code"], "not the customer's decline")
		require.EqualValues(t, 1, a["send_count"], "sent once, never resent")
	}
	require.Zero(t, stale.QueryInt(`SELECT count(*) FROM payment_attempts WHERE status IN ('pending', 'unknown')`))
	require.Equal(t, "active", stale.Subscription(subID)["status"], "dunning does not move for our own mistake")
	require.Len(t, sim.Charges(), 1, "only the first invoice was charged")
	metrics := string(stale.Do("GET", "/metrics", "", nil).Body)
	require.True(t, strings.Contains(metrics, `billing_gateway_merchant_refusals_total{code="UNAUTHORIZED_KEY",gateway="sim",method="charge"}`), "counted for the alert")
	stale.Stop()

	fixed := testenv.New(t, testenv.Options{DBURL: first.DBURL, SimURL: simURL})
	fixed.Advance("1h")
	invs = invoicesOf(t, fixed, subID)
	require.Equal(t, "paid", invs[1]["status"])
	charges := sim.Charges()
	require.Len(t, charges, 2)
	require.NotEqual(t, charges[0].OrderID, charges[1].OrderID)
	fixed.RequireBalanced()
}
