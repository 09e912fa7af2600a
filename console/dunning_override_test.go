package console_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

// The account page's "Dunning policy" card says which policy applies to each subscription and why, and
// its form sets and lifts the customer's override through the same billing call as the REST endpoint:
// audited as the console's, a CSRF token required, an invalid policy refused with every problem.
func TestConsoleSetsAndLiftsDunningOverrides(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	a := subscribe(t, env, plan)
	path := "/console/customers/" + a.Customer + "/dunning"

	v := newVisitor(t, env)
	require.Equal(t, http.StatusSeeOther, v.signIn(testenv.SupportToken).Status)
	account := v.get("/console/customers/" + a.Customer)
	require.Contains(t, account.Body, "Dunning policy")
	require.Contains(t, account.Body, `id="dunning-applied"`)
	require.Contains(t, account.Body, "the service&#39;s default policy")
	require.Contains(t, account.Body, `action="`+path+`"`)

	// Without the CSRF token: refused, nothing set.
	p := v.do("POST", path, url.Values{"mode": {"exempt"}, "reason": {"x"}, "customer_id": {a.Customer}})
	require.Equal(t, http.StatusForbidden, p.Status, p.Body)
	require.Zero(t, env.QueryInt(`SELECT count(*) FROM dunning_overrides`))

	post := func(fields url.Values) page {
		t.Helper()
		account := v.get("/console/customers/" + a.Customer)
		fields.Set("csrf", csrfOf(t, account))
		fields.Set("customer_id", a.Customer)
		p := v.do("POST", path, fields)
		require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
		return v.get(p.Location)
	}

	p = post(url.Values{"mode": {"policy"}, "policy": {`{"max_retries": 99, "grace_period": "40d"}`}, "reason": {"ticket 7"}})
	require.Contains(t, p.Body, `class="flash flash-error"`, p.Body)
	require.Contains(t, p.Body, "max_retries must be from 0 to 30")
	require.Contains(t, p.Body, "dunning_window must be at least grace_period")
	require.Zero(t, env.QueryInt(`SELECT count(*) FROM dunning_overrides`))

	p = post(url.Values{"mode": {"policy"}, "policy": {`{"final_action": "unpaid"}`}, "reason": {"enterprise terms"}})
	require.Contains(t, p.Body, `class="flash flash-ok"`, p.Body)
	require.Contains(t, p.Body, "policy of the customer's own")
	require.Contains(t, p.Body, "enterprise terms")
	require.Contains(t, p.Body, "unpaid")

	p = post(url.Values{"mode": {"exempt"}, "reason": {"hardship"}})
	require.Contains(t, p.Body, "exempt from dunning")
	require.Contains(t, p.Body, "never suspended or canceled")

	p = post(url.Values{"mode": {"none"}, "reason": {"hardship over"}})
	require.Contains(t, p.Body, "No override")
	require.Zero(t, env.QueryInt(`SELECT count(*) FROM dunning_overrides`))
	require.Equal(t, 3, env.QueryInt(`SELECT count(*) FROM audit_log WHERE action = 'set-dunning-override' AND target_id = $1
		AND origin = 'console' AND actor LIKE 'console:bootstrap:support:%'`, a.Customer))
}
