package api_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// Twenty plan changes race on one subscription, each charging its proration at a slow gateway. Each 200
// must describe the change that request made (its quantity, and the invoice it charged), not whichever
// change committed last while it waited for the gateway.
func TestConcurrentPlanChangesEachDescribeTheirOwnChange(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("1000", "KRW", "month", 1)
	_, sub := subscribed(t, env, plan, "ok")
	advanceTo(t, env, midPeriod(sub))
	// Every charge waits at the gateway, so later changes commit while earlier ones are still charging.
	env.Sim().SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{Latency: &pgsim.LatencyFault{Rule: pgsim.Rule{Probability: 1}, Ms: 150}}})

	const n = 20
	var wg sync.WaitGroup
	answers := make([]testenv.Response, n)
	for i := range n {
		wg.Go(func() {
			answers[i] = env.Do("POST", "/v1/subscriptions/"+sub.ID+"/change-plan", testenv.ServiceToken,
				map[string]any{"plan_id": plan, "quantity": i + 2, "timing": "immediate"})
		})
	}
	wg.Wait()

	ok := 0
	for i, res := range answers {
		if res.Status != 200 {
			// Refusals (a 409 while another change holds a charge in flight) are fine; a 200 must be true.
			require.Contains(t, []int{409, 422}, res.Status, string(res.Body))
			continue
		}
		ok++
		var out planChangedBody
		res.Decode(t, &out)
		require.Equal(t, i+2, out.Subscription.Quantity, "answer %d describes another request's change: %s", i, res.Body)
		require.Equal(t, plan, out.Subscription.PlanID)
		require.Equal(t, etagOf(out.Subscription.Version), res.Header.Get("ETag"))
		if out.Invoice != nil {
			last := out.Invoice.Lines[len(out.Invoice.Lines)-1]
			require.Equal(t, i+2, last.Quantity, "answer %d carries another change's invoice: %s", i, res.Body)
		}
	}
	require.Greater(t, ok, 1, "the changes must really have raced")
	env.RequireBalanced()
}
