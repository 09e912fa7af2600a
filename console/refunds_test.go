package console_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

// Support refunds a paid invoice to the card and to the balance, and lowers an open invoice, from the
// account page: the same credit notes as over REST, shown on the page, audited as the console's.
func TestConsoleRefundsAndCreditNotes(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	a := subscribe(t, env, plan)
	paid := env.Do("GET", "/v1/invoices?subscription_id="+a.Subscription, testenv.SupportToken, nil).JSON(t)["data"].([]any)[0].(map[string]any)["id"].(string)

	v := newVisitor(t, env)
	require.Equal(t, http.StatusSeeOther, v.signIn(testenv.SupportToken).Status)
	post := func(path string, fields url.Values) page {
		t.Helper()
		account := v.get("/console/customers/" + a.Customer)
		require.Contains(t, account.Body, `action="`+path+`"`, "the page offers %s", path)
		fields.Set("csrf", csrfOf(t, account))
		fields.Set("customer_id", a.Customer)
		p := v.do("POST", path, fields)
		require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
		return v.get(p.Location)
	}

	p := post("/console/invoices/"+paid+"/refund", url.Values{"amount": {"3000"}, "to": {"card"}, "reason": {"ticket 41"}})
	require.Contains(t, p.Body, `class="flash flash-ok"`, p.Body)
	require.Contains(t, p.Body, "refunded to the card")
	require.Contains(t, p.Body, "INV-CN-000001")
	c := env.Sim().Charges()[0]
	require.Equal(t, "PARTIAL_CANCELED", c.Status)

	p = post("/console/invoices/"+paid+"/refund", url.Values{"amount": {"1000"}, "to": {"credit"}, "reason": {"ticket 42"}})
	require.Contains(t, p.Body, "credited to the customer&#39;s balance")
	require.Contains(t, p.Body, "INV-CN-000002")

	// More than is left: refused with the reason, nothing done.
	p = post("/console/invoices/"+paid+"/refund", url.Values{"amount": {"9000"}, "to": {"card"}, "reason": {"ticket 43"}})
	require.Contains(t, p.Body, `class="flash flash-error"`, p.Body)
	require.Equal(t, 2, env.QueryInt(`SELECT count(*) FROM credit_notes`))

	require.Equal(t, 2, env.QueryInt(`SELECT count(*) FROM audit_log WHERE action = 'refund' AND target_id = $1 AND origin = 'console'
		AND actor LIKE 'console:bootstrap:support:%'`, paid))
	env.RequireBalanced()
}
