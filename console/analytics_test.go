package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// analyticsHistory: three monthly KRW subscriptions whose first renewal meets an ok card, a card that
// declines twice and then pays (flaky-2) and one that never pays again (canceled when dunning ends); the
// clock stops 20 days after the renewal.
func analyticsHistory(t *testing.T, env *testenv.Env) (from, to time.Time) {
	t.Helper()
	start := env.Now()
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	var first string
	for _, behavior := range []string{pgsim.BehaviorOK, "flaky-2", pgsim.BehaviorInsufficient} {
		a := subscribe(t, env, plan)
		if first == "" {
			first = a.Subscription
		}
		require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+a.Customer, behavior))
	}
	to = env.RenewalAt(first).Add(20 * 24 * time.Hour)
	env.AdvanceTo(to)
	return start.Add(time.Hour), to
}

func TestConsoleAnalyticsPage(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	from, to := analyticsHistory(t, env)
	v := newVisitor(t, env)
	require.Equal(t, http.StatusSeeOther, v.get("/console/analytics").Status, "no session: sign in first")
	v.signIn(testenv.SupportToken)
	home := v.get("/console")
	require.Contains(t, home.Body, `href="/console/analytics"`, "linked from the nav")

	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "interval": {"week"}}.Encode()
	p := v.get("/console/analytics?" + q)
	require.Equal(t, 200, p.Status, p.Body)
	for _, id := range []string{"chart-recovery-rate", "chart-decline-codes", "chart-attempts", "chart-revenue", "chart-churn", "chart-mrr"} {
		require.Contains(t, p.Body, `id="`+id+`"`, id)
	}
	require.Greater(t, strings.Count(p.Body, `<rect `), 0, "bars")
	// The figures: 2 at risk, 1 recovered (50.0%), MRR 19800 with two subscribers left, one churned.
	require.Contains(t, p.Body, "50.0%")
	require.Contains(t, p.Body, "1 of 2 at-risk invoices")
	require.Contains(t, p.Body, "19,800")
	require.Contains(t, p.Body, "2 subscribers")
	require.Contains(t, p.Body, "REJECT_CARD_PAYMENT")
	require.Contains(t, p.Body, "<path d=\"M ", "the MRR line")
	require.NotContains(t, p.Body, "<script")

	bad := v.get("/console/analytics?interval=year")
	require.Equal(t, 422, bad.Status)
	require.Contains(t, bad.Body, "must be day, week or month")

	// In the browser: the charts draw, and a screenshot for docs/screenshots (UPDATE_SCREENSHOTS=1).
	ctx := tab(t)
	signIn(t, ctx, env, testenv.AdminToken)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(env.URL+"/console/analytics?"+q), chromedp.WaitVisible(chromedp.CSS(`#chart-mrr svg`))))
	require.Contains(t, text(t, ctx, "#figures"), "recovery rate")
	screenshot(t, ctx, "analytics")
}

// The policy comparison: a candidate pasted into the form is read like BILLING_DUNNING_POLICY and
// compared by billing.SimulatePolicy with the record and the current policy (the known answers of
// billingctl's test: flaky-2 recovers on its third charge, which a single retry never reaches).
func TestConsolePolicySimulator(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	analyticsHistory(t, env)
	v := newVisitor(t, env)
	v.signIn(testenv.SupportToken)
	form := v.get("/console/simulate")
	require.Equal(t, 200, form.Status, form.Body)
	require.Contains(t, form.Body, `href="/console/simulate"`)
	csrf := csrfOf(t, form)

	p := v.do("POST", "/console/simulate", url.Values{"csrf": {csrf}, "policy": {"max_retries: 1\n"}, "since": {"90d"}})
	require.Equal(t, 200, p.Status, p.Body)
	require.Contains(t, p.Body, "2 dunning episodes")
	require.Regexp(t, `recovered revenue KRW</td><td class="num">9,900</td><td class="num">9,900</td><td class="num">0</td>`, p.Body)
	require.Regexp(t, `recovery rate</td><td class="num">50.0%</td><td class="num">50.0%</td><td class="num">0.0%</td>`, p.Body)
	require.Regexp(t, `customers canceled</td><td class="num">1</td><td class="num">1</td><td class="num">2</td>`, p.Body)
	require.Contains(t, p.Body, `id="sim-rate"`)
	require.Contains(t, p.Body, "healed halfway between its last decline")

	bad := v.do("POST", "/console/simulate", url.Values{"csrf": {csrf}, "policy": {"max_retrys: 1\n"}})
	require.Equal(t, 422, bad.Status)
	require.Contains(t, bad.Body, `unknown key &#34;max_retrys&#34;`)
	forged := v.do("POST", "/console/simulate", url.Values{"policy": {"max_retries: 1\n"}})
	require.Equal(t, 403, forged.Status, "a form without the CSRF token")

	// In the browser: the form posts, the charts draw, and a screenshot for docs/screenshots
	// (UPDATE_SCREENSHOTS=1).
	ctx := tab(t)
	signIn(t, ctx, env, testenv.AdminToken)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(env.URL+"/console/simulate"),
		chromedp.WaitVisible(chromedp.CSS(`#policy`)),
		chromedp.SendKeys(chromedp.CSS(`#policy`), "max_retries: 1\n"),
		chromedp.Click(chromedp.CSS(`#run`)),
		chromedp.WaitVisible(chromedp.CSS(`#sim-canceled svg`)),
	))
	require.Contains(t, text(t, ctx, "#comparison"), "2 dunning episodes")
	require.Contains(t, text(t, ctx, "#figures-table"), "recovery rate")
	screenshot(t, ctx, "simulator")
}
