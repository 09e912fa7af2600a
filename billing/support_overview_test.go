package billing_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// The console's overview is billing's read: delinquent subscriptions by state, what they owe, and how
// many of those that went past due came back.
func TestDelinquencyOverviewCountsWhatIsOwedAndWhatRecovered(t *testing.T) {
	t.Parallel()
	b := setupSupport(t)
	env, d := b.env, b.delinquency
	ctx := context.Background()
	overview := func() billing.DelinquencyOverview {
		now := env.App.Clock.Now()
		o, err := env.App.Billing.DelinquencyOverview(ctx, now.Add(-30*24*time.Hour), now)
		require.NoError(t, err)
		return o
	}

	o := overview()
	require.Equal(t, map[string]int{"past_due": 1}, o.ByState)
	require.Equal(t, 0, o.PausedDunning)
	require.Equal(t, 1, o.Entered)
	require.Equal(t, 0, o.Recovered)
	require.Equal(t, []billing.AmountDue{{Amount: "9900", Currency: "KRW"}}, o.AtRisk)

	res := support(t, env, "/subscriptions/"+d.sub+"/pause-dunning", map[string]any{"reason": "customer on holiday"}, "req-overview-pause")
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, 1, overview().PausedDunning)
	res = support(t, env, "/subscriptions/"+d.sub+"/resume-dunning", map[string]any{"reason": "back"}, "req-overview-resume")
	require.Equal(t, 200, res.Status, string(res.Body))

	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+d.customer, pgsim.BehaviorOK))
	res = support(t, env, "/invoices/"+d.invoice+"/retry", map[string]any{"reason": "card fixed"}, "req-overview-retry")
	require.Equal(t, 200, res.Status, string(res.Body))
	o = overview()
	require.Empty(t, o.ByState)
	require.Equal(t, 1, o.Entered)
	require.Equal(t, 1, o.Recovered)
	require.Empty(t, o.AtRisk)
}
