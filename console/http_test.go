package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/api"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/internal/testdb"
)

// The tests in this file speak plain HTTP: they look at status codes and cookie attributes, and send
// what a browser would not (a forged form).

type page struct {
	Status   int
	Location string
	Body     string
	Header   http.Header
}

type visitor struct {
	t    *testing.T
	env  *testenv.Env
	http *http.Client
}

func newVisitor(t *testing.T, env *testenv.Env) *visitor {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := client()
	c.Jar = jar
	return &visitor{t: t, env: env, http: c}
}

func (v *visitor) do(method, path string, form url.Values, headers ...string) page {
	v.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, v.env.URL+path, body)
	require.NoError(v.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, h := range headers {
		k, val, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(val))
	}
	res, err := v.http.Do(req)
	require.NoError(v.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(v.t, err)
	return page{Status: res.StatusCode, Location: res.Header.Get("Location"), Body: string(raw), Header: res.Header}
}

func (v *visitor) get(path string) page { v.t.Helper(); return v.do("GET", path, nil) }

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf returns the CSRF token a page's forms carry.
func csrfOf(t *testing.T, p page) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(p.Body)
	require.NotNil(t, m, "a form with a CSRF token: %s", p.Body)
	return m[1]
}

// signIn posts the sign-in form as a browser would and returns the answer.
func (v *visitor) signIn(token string, headers ...string) page {
	v.t.Helper()
	form := v.get("/console/login")
	require.Equal(v.t, 200, form.Status)
	return v.do("POST", "/console/login", url.Values{"csrf": {csrfOf(v.t, form)}, "token": {token}}, headers...)
}

func sessionCookie(t *testing.T, p page) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if c.Name == "console_session" {
			return c
		}
	}
	t.Fatalf("no console_session cookie in %v", p.Header.Values("Set-Cookie"))
	return nil
}

func TestConsoleSignIn(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)

	anon := newVisitor(t, env)
	for _, path := range []string{"/console", "/console/", "/console/delinquent", "/console/customers/cus_nobody", "/console/api-keys"} {
		p := anon.get(path)
		require.Equal(t, http.StatusSeeOther, p.Status, path)
		require.Equal(t, "/console/login", p.Location, path)
	}
	p := anon.do("POST", "/console/invoices/inv_x/retry", url.Values{"reason": {"x"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, "/console/login", p.Location)

	// Only support and admin tokens, only valid ones, only through the form.
	p = newVisitor(t, env).signIn(testenv.ServiceToken)
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Contains(t, p.Body, "support and admin tokens")
	p = newVisitor(t, env).signIn("sup_not_a_real_token")
	require.Equal(t, http.StatusUnauthorized, p.Status)
	forged := newVisitor(t, env).do("POST", "/console/login", url.Values{"token": {testenv.SupportToken}})
	require.Equal(t, http.StatusForbidden, forged.Status, "a sign-in post without the form's token")
	require.Zero(t, env.QueryInt(`SELECT count(*) FROM console_sessions`))

	v := newVisitor(t, env)
	p = v.signIn(testenv.SupportToken)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, "/console", p.Location)
	c := sessionCookie(t, p)
	require.True(t, c.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, c.SameSite)
	require.Equal(t, "/console", c.Path)
	require.False(t, c.Secure, "plain HTTP on loopback")
	// The session row keeps what the token resolved to, not the token, and not the cookie's id either.
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM console_sessions WHERE role = 'support' AND key_id LIKE 'bootstrap:support:%'`))
	require.Zero(t, env.QueryInt(`SELECT count(*) FROM console_sessions s WHERE position($1 in row_to_json(s)::text) > 0
		OR position($2 in row_to_json(s)::text) > 0`, testenv.SupportToken, c.Value))

	home := v.get("/console")
	require.Equal(t, http.StatusOK, home.Status)
	require.Contains(t, home.Body, "Overview")
	require.Contains(t, home.Header.Get("Content-Security-Policy"), "default-src 'none'")
	require.Equal(t, "no-store", home.Header.Get("Cache-Control"))

	// Behind a TLS-terminating proxy the cookie is Secure.
	require.True(t, sessionCookie(t, newVisitor(t, env).signIn(testenv.AdminToken, "X-Forwarded-Proto: https")).Secure)

	// Signing out needs the form's token too; then the session is gone.
	p = v.do("POST", "/console/logout", url.Values{})
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Equal(t, http.StatusOK, v.get("/console").Status, "a refused sign-out leaves the session")
	p = v.do("POST", "/console/logout", url.Values{"csrf": {csrfOf(t, home)}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, "/console/login", p.Location)
	p = v.get("/console")
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, "/console/login", p.Location)
}

// A form posted without the session's CSRF token (say, from another site riding the cookie) is refused
// and changes nothing; the same post with the token goes through.
func TestConsoleRefusesFormsWithoutCSRFToken(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	a := pastDue(t, env)
	invoice := openInvoice(t, env, a.Subscription)
	attempts := env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1`, invoice)
	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+a.Customer, "ok"))

	v := newVisitor(t, env)
	require.Equal(t, http.StatusSeeOther, v.signIn(testenv.SupportToken).Status)
	account := v.get("/console/customers/" + a.Customer)
	require.Equal(t, http.StatusOK, account.Status)
	token := csrfOf(t, account)

	unchanged := func() {
		t.Helper()
		require.Zero(t, env.QueryInt(`SELECT count(*) FROM audit_log`))
		require.Equal(t, attempts, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1`, invoice))
		require.Equal(t, "past_due", env.Subscription(a.Subscription)["status"])
	}
	for name, form := range map[string]url.Values{
		"no token":    {"reason": {"forged"}, "customer_id": {a.Customer}},
		"wrong token": {"reason": {"forged"}, "customer_id": {a.Customer}, "csrf": {token + "x"}},
		"empty token": {"reason": {"forged"}, "customer_id": {a.Customer}, "csrf": {""}},
	} {
		p := v.do("POST", "/console/invoices/"+invoice+"/retry", form)
		require.Equal(t, http.StatusForbidden, p.Status, name)
		require.Contains(t, p.Body, "nothing was changed", name)
	}
	p := v.do("POST", "/console/subscriptions/"+a.Subscription+"/cancel", url.Values{"reason": {"forged"}})
	require.Equal(t, http.StatusForbidden, p.Status)
	// Another session's token is not this session's.
	other := newVisitor(t, env)
	require.Equal(t, http.StatusSeeOther, other.signIn(testenv.SupportToken).Status)
	p = other.do("POST", "/console/invoices/"+invoice+"/retry", url.Values{"reason": {"forged"}, "csrf": {token}})
	require.Equal(t, http.StatusForbidden, p.Status)
	unchanged()

	// A reason is required, as over REST: the action is refused with the service's message.
	p = v.do("POST", "/console/invoices/"+invoice+"/retry", url.Values{"csrf": {token}, "customer_id": {a.Customer}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Contains(t, v.get(p.Location).Body, "Not done: reason: is required")
	unchanged()

	p = v.do("POST", "/console/invoices/"+invoice+"/retry", url.Values{"csrf": {token}, "reason": {"ticket 9"}, "customer_id": {a.Customer}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, "/console/customers/"+a.Customer, p.Location)
	after := v.get(p.Location)
	require.Contains(t, after.Body, `<div class="flash flash-ok" role="status">Retry of invoice `+invoice+` succeeded`)
	require.NotContains(t, v.get(p.Location).Body, "flash-ok", "the flash shows once")
	require.Equal(t, "active", env.Subscription(a.Subscription)["status"])
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM audit_log WHERE origin = 'console' AND action = 'retry'`))

	// An action the state does not allow is not offered, and posting it anyway is refused by billing.
	require.NotContains(t, after.Body, "/invoices/"+invoice+"/void")
	p = v.do("POST", "/console/invoices/"+invoice+"/void", url.Values{"csrf": {token}, "reason": {"try"}, "customer_id": {a.Customer}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Contains(t, v.get(p.Location).Body, "Not done: cannot void invoice "+invoice+": it is paid")
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM audit_log`))
	env.RequireBalanced()
}

// Whatever a customer or merchant typed is shown as text, never run as markup.
// The account page shows the credit the customer holds.
func TestConsoleShowsCustomerCredit(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	cus := env.CreateCustomer()
	res := env.Do("POST", "/v1/customers/"+cus+"/credit", testenv.SupportToken, map[string]any{"amount": "12000", "currency": "KRW", "reason": "goodwill"})
	require.Equal(t, 200, res.Status, string(res.Body))
	v := newVisitor(t, env)
	require.Equal(t, http.StatusSeeOther, v.signIn(testenv.SupportToken).Status)
	p := v.get("/console/customers/" + cus)
	require.Equal(t, http.StatusOK, p.Status)
	require.Regexp(t, `id="credit">[^<]*12,?000 <small>KRW</small> credit`, p.Body)
}

func TestConsoleEscapesWhatCustomersType(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	res := env.Do("POST", "/v1/customers", testenv.ServiceToken, map[string]any{"external_id": `"><img src=x onerror=alert(1)>`,
		"email": "x@example.com", "name": `<script>alert("name")</script>`})
	require.Equal(t, 201, res.Status, string(res.Body))
	id := res.JSON(t)["id"].(string)

	v := newVisitor(t, env)
	require.Equal(t, http.StatusSeeOther, v.signIn(testenv.SupportToken).Status)
	p := v.get("/console/customers/" + id)
	require.Equal(t, http.StatusOK, p.Status)
	require.Contains(t, p.Body, "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;")
	require.Contains(t, p.Body, "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;")
	require.NotContains(t, p.Body, "<script>")
	require.NotContains(t, p.Body, "<img src=x")

	p = v.get("/console/customers/cus_nobody")
	require.Equal(t, http.StatusNotFound, p.Status)
	p = v.get("/console/delinquent?state=<b>")
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.NotContains(t, p.Body, "<b>")
}

// Every action on the account page goes through billing's support methods: it changes what the REST call
// would change and leaves the same audit row, marked as the console's.
func TestConsoleActionsDoWhatRESTDoes(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	accounts := map[string]account{}
	for _, name := range []string{"mark-paid", "void", "write-off", "extend-grace", "pause", "cancel"} {
		accounts[name] = subscribe(t, env, plan)
		require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+accounts[name].Customer, "insufficient"))
	}
	pastRenewal(env, accounts["cancel"])

	v := newVisitor(t, env)
	require.Equal(t, http.StatusSeeOther, v.signIn(testenv.SupportToken).Status)
	// post submits one of the account page's forms and returns the page it lands on.
	post := func(a account, path string, fields url.Values) page {
		t.Helper()
		account := v.get("/console/customers/" + a.Customer)
		require.Contains(t, account.Body, `action="`+path+`"`, "the page offers %s", path)
		fields.Set("csrf", csrfOf(t, account))
		fields.Set("customer_id", a.Customer)
		p := v.do("POST", path, fields)
		require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
		require.Equal(t, "/console/customers/"+a.Customer, p.Location)
		landed := v.get(p.Location)
		require.Contains(t, landed.Body, `class="flash flash-ok"`, "%s: %s", path, landed.Body)
		return landed
	}
	audited := func(action, target string) {
		t.Helper()
		require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM audit_log WHERE action = $1 AND target_id = $2 AND origin = 'console'
			AND actor LIKE 'console:bootstrap:support:%' AND reason LIKE 'ticket %'`, action, target), "%s %s", action, target)
	}
	dunning := func(a account) map[string]any { return env.Subscription(a.Subscription)["dunning"].(map[string]any) }

	a := accounts["mark-paid"]
	inv := openInvoice(t, env, a.Subscription)
	p := post(a, "/console/invoices/"+inv+"/mark-paid", url.Values{"reason": {"ticket 1"}, "amount": {"9900"}, "reference": {"wire-77"}})
	require.Contains(t, p.Body, "marked paid offline")
	require.Equal(t, "active", env.Subscription(a.Subscription)["status"])
	audited("mark-paid", inv)

	a = accounts["void"]
	inv = openInvoice(t, env, a.Subscription)
	post(a, "/console/invoices/"+inv+"/void", url.Values{"reason": {"ticket 2"}})
	require.Equal(t, "active", env.Subscription(a.Subscription)["status"], "waived: nothing else is owed")
	audited("void", inv)

	a = accounts["write-off"]
	inv = openInvoice(t, env, a.Subscription)
	post(a, "/console/invoices/"+inv+"/write-off", url.Values{"reason": {"ticket 3"}})
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM invoices WHERE id = $1 AND status = 'uncollectible'`, inv))
	audited("write-off", inv)

	a = accounts["extend-grace"]
	grace, err := time.Parse(time.RFC3339, dunning(a)["grace_ends_at"].(string))
	require.NoError(t, err)
	until := grace.Add(72 * time.Hour).Truncate(time.Minute)
	p = post(a, "/console/subscriptions/"+a.Subscription+"/extend-grace", url.Values{"reason": {"ticket 4"}, "until": {until.Format("2006-01-02T15:04")}})
	require.Contains(t, p.Body, "extended to "+until.Format("2006-01-02 15:04 UTC"))
	require.Equal(t, until.Format(time.RFC3339), dunning(a)["grace_ends_at"])
	audited("extend-grace", a.Subscription)

	a = accounts["pause"]
	p = post(a, "/console/subscriptions/"+a.Subscription+"/pause-dunning", url.Values{"reason": {"ticket 5"}, "until": {""}})
	require.Contains(t, p.Body, "paused until someone resumes it")
	require.Equal(t, true, dunning(a)["paused"])
	require.NotContains(t, p.Body, "/pause-dunning\"", "paused: resume is offered instead")
	post(a, "/console/subscriptions/"+a.Subscription+"/resume-dunning", url.Values{"reason": {"ticket 6"}})
	require.Equal(t, false, dunning(a)["paused"])
	audited("pause-dunning", a.Subscription)
	audited("resume-dunning", a.Subscription)

	a = accounts["cancel"]
	p = post(a, "/console/subscriptions/"+a.Subscription+"/cancel", url.Values{"reason": {"ticket 7"}})
	require.Contains(t, p.Body, "is canceled")
	require.Equal(t, "canceled", env.Subscription(a.Subscription)["status"])
	require.NotContains(t, p.Body, `/subscriptions/`+a.Subscription+`/`, "a canceled subscription offers nothing")
	audited("cancel", a.Subscription)

	env.RequireBalanced()
}

// Reconciliation findings are decided on the overview, as through the REST endpoint: refund a charge we
// never asked for at the gateway, or dismiss a finding, always with a reason and an audit row.
func TestConsoleResolvesReconciliationFindings(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	now := env.App.Billing.Now()
	for _, order := range []string{"stray-refund", "stray-dismiss"} {
		_, err := env.Sim().Plant(order, pgsim.Plant{Amount: decimal.NewFromInt(5000), ApprovedAt: now})
		require.NoError(t, err)
	}
	_, err := env.App.Reconcile.Run(context.Background(), "sim", now.Add(-24*time.Hour), now.Add(time.Hour))
	require.NoError(t, err)
	findingOf := func(order string) string {
		var id string
		require.NoError(t, env.App.Pool.QueryRow(context.Background(), `SELECT id FROM reconciliation_findings WHERE order_id = $1`, order).Scan(&id))
		return id
	}
	refund, dismiss := findingOf("stray-refund"), findingOf("stray-dismiss")

	v := newVisitor(t, env)
	require.Equal(t, http.StatusSeeOther, v.signIn(testenv.SupportToken).Status)
	resolve := func(id string, fields url.Values) page {
		t.Helper()
		overview := v.get("/console")
		require.Contains(t, overview.Body, `action="/console/findings/`+id+`/resolve"`, "the overview offers a decision on %s", id)
		fields.Set("csrf", csrfOf(t, overview))
		p := v.do("POST", "/console/findings/"+id+"/resolve", fields)
		require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
		require.Equal(t, "/console", p.Location)
		return v.get(p.Location)
	}

	// Without a reason nothing happens, and the person is told why.
	p := resolve(refund, url.Values{"action": {"cancel_at_gateway"}, "reason": {" "}})
	require.Contains(t, p.Body, `class="flash flash-error"`)
	charge, _ := env.Sim().Charge("stray-refund")
	require.Equal(t, "DONE", charge.Status)

	p = resolve(refund, url.Values{"action": {"cancel_at_gateway"}, "reason": {"ticket 31: not our charge"}})
	require.Contains(t, p.Body, "refunded")
	charge, _ = env.Sim().Charge("stray-refund")
	require.Equal(t, "CANCELED", charge.Status)
	require.NotContains(t, p.Body, `/console/findings/`+refund+`/resolve`, "a resolved finding leaves the list")

	p = resolve(dismiss, url.Values{"action": {"dismiss"}, "reason": {"ticket 32: paid by phone, booked by finance"}})
	require.Contains(t, p.Body, "dismissed")
	require.Contains(t, p.Body, "No open findings")
	charge, _ = env.Sim().Charge("stray-dismiss")
	require.Equal(t, "DONE", charge.Status, "dismissing refunds nothing")

	for id, action := range map[string]string{refund: "reconciliation.cancel_at_gateway", dismiss: "reconciliation.dismiss"} {
		require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM audit_log WHERE action = $1 AND target_id = $2 AND origin = 'console'
			AND actor LIKE 'console:bootstrap:support:%' AND reason LIKE 'ticket %'`, action, id), id)
	}
	require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM reconciliation_findings WHERE status = 'open'`))
}

// A form carries the version of the invoice or subscription it was rendered with: if someone changed the
// account since (another person, the merchant's backend, the dunning clock), the action is refused and the
// person is asked to look again, instead of acting on a stale page.
func TestConsoleRefusesActionsOnAStalePage(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	a := pastDue(t, env)

	v := newVisitor(t, env)
	require.Equal(t, http.StatusSeeOther, v.signIn(testenv.SupportToken).Status)
	formVersion := regexp.MustCompile(`action="/console/subscriptions/` + a.Subscription + `/extend-grace"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)"><input type="hidden" name="customer_id" value="[^"]+"><input type="hidden" name="version" value="(\d+)">`)
	stale := v.get("/console/customers/" + a.Customer)
	m := formVersion.FindStringSubmatch(stale.Body)
	require.NotNil(t, m, stale.Body)

	// Meanwhile a colleague pauses dunning over REST.
	res := env.Do("POST", "/v1/support/subscriptions/"+a.Subscription+"/pause-dunning", testenv.SupportToken, map[string]any{"reason": "ticket 40"})
	require.Equal(t, 200, res.Status, string(res.Body))
	grace := env.Subscription(a.Subscription)["dunning"].(map[string]any)["grace_ends_at"]

	until := env.Now().AddDate(0, 0, 60).Format("2006-01-02T15:04")
	p := v.do("POST", "/console/subscriptions/"+a.Subscription+"/extend-grace", url.Values{"csrf": {m[1]}, "customer_id": {a.Customer},
		"version": {m[2]}, "reason": {"ticket 41"}, "until": {until}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	landed := v.get(p.Location)
	require.Contains(t, landed.Body, `class="flash flash-error"`)
	require.Contains(t, landed.Body, "changed since this page was loaded")
	require.Equal(t, grace, env.Subscription(a.Subscription)["dunning"].(map[string]any)["grace_ends_at"], "nothing changed")
	require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM audit_log WHERE action = 'extend-grace'`))

	// A garbled version is refused too; the fresh page's version goes through.
	p = v.do("POST", "/console/subscriptions/"+a.Subscription+"/extend-grace", url.Values{"csrf": {m[1]}, "customer_id": {a.Customer},
		"version": {"x"}, "reason": {"ticket 41"}, "until": {until}})
	require.Contains(t, v.get(p.Location).Body, `class="flash flash-error"`)
	fresh := formVersion.FindStringSubmatch(landed.Body)
	require.NotNil(t, fresh)
	require.NotEqual(t, m[2], fresh[2])
	p = v.do("POST", "/console/subscriptions/"+a.Subscription+"/extend-grace", url.Values{"csrf": {fresh[1]}, "customer_id": {a.Customer},
		"version": {fresh[2]}, "reason": {"ticket 42"}, "until": {until}})
	require.Contains(t, v.get(p.Location).Body, `class="flash flash-ok"`)
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM audit_log WHERE action = 'extend-grace'`))
}

// A revoked key's console sessions end at once: the next page after the revocation is the sign-in page,
// on this replica and on another one, and signing in again with the key is refused.
func TestConsoleSessionsOfARevokedKeyEndAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := testenv.New(t)
	replica := testenv.New(t, testenv.Options{DBURL: env.DBURL, SimURL: env.App.SimURL})
	key, err := api.CreateAPIKey(ctx, testdb.Pool(t, env.DBURL), api.RoleSupport, "agent", time.Now())
	require.NoError(t, err)

	here, there, bystander := newVisitor(t, env), newVisitor(t, replica), newVisitor(t, env)
	require.Equal(t, http.StatusSeeOther, here.signIn(key.Token).Status)
	require.Equal(t, http.StatusSeeOther, there.signIn(key.Token).Status)
	require.Equal(t, http.StatusSeeOther, bystander.signIn(testenv.SupportToken).Status)
	require.Equal(t, 200, here.get("/console/delinquent").Status)
	require.Equal(t, 200, there.get("/console/delinquent").Status)

	res := env.Do("POST", "/v1/api-keys/"+key.ID+"/revoke", testenv.AdminToken, map[string]any{"reason": "left the team"})
	require.Equal(t, 200, res.Status, string(res.Body))

	for _, v := range []*visitor{here, there} {
		p := v.get("/console/delinquent")
		require.Equal(t, http.StatusSeeOther, p.Status)
		require.Equal(t, "/console/login", p.Location)
		require.Equal(t, http.StatusSeeOther, v.get("/console").Status, "the session is gone, not just refused once")
		require.Equal(t, http.StatusUnauthorized, v.signIn(key.Token).Status)
	}
	require.Equal(t, 200, bystander.get("/console/delinquent").Status, "other people's sessions go on")
	require.Equal(t, 0, env.QueryInt(`SELECT count(*) FROM console_sessions WHERE key_id = $1`, key.ID))
}

// A session started with a bootstrap token ends once a replica no longer lists the token.
func TestConsoleSessionOfARemovedBootstrapTokenEnds(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	without := testenv.New(t, testenv.Options{DBURL: env.DBURL, SimURL: env.App.SimURL,
		Env: map[string]string{"BILLING_BOOTSTRAP_KEYS": "admin:" + testenv.AdminToken}})
	v := newVisitor(t, env)
	require.Equal(t, http.StatusSeeOther, v.signIn(testenv.SupportToken).Status)
	require.Equal(t, 200, v.get("/console/delinquent").Status)
	// The cookie jar is per host, not per port: the same browser now asks the other replica.
	moved := &visitor{t: t, env: without, http: v.http}
	p := moved.get("/console/delinquent")
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, "/console/login", p.Location)
	require.Equal(t, http.StatusSeeOther, v.get("/console/delinquent").Status, "the session row is gone for every replica")
}

// The account page offers no "retry now" for an invoice whose subscription's dunning is paused, and says its
// charges are held; the retry comes back when dunning resumes.
func TestConsoleHoldsRetryWhileDunningIsPaused(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	a := pastDue(t, env)
	inv := openInvoice(t, env, a.Subscription)
	v := newVisitor(t, env)
	require.Equal(t, http.StatusSeeOther, v.signIn(testenv.SupportToken).Status)
	retryForm := `action="/console/invoices/` + inv + `/retry"`
	require.Contains(t, v.get("/console/customers/"+a.Customer).Body, retryForm)

	res := env.Do("POST", "/v1/support/subscriptions/"+a.Subscription+"/pause-dunning", testenv.SupportToken, map[string]any{"reason": "dispute"})
	require.Equal(t, 200, res.Status, string(res.Body))
	p := v.get("/console/customers/" + a.Customer)
	require.NotContains(t, p.Body, retryForm)
	require.Contains(t, p.Body, "charges held while dunning is paused")
	require.Contains(t, p.Body, `action="/console/invoices/`+inv+`/mark-paid"`, "the other actions stay")

	res = env.Do("POST", "/v1/support/subscriptions/"+a.Subscription+"/resume-dunning", testenv.SupportToken, map[string]any{"reason": "settled"})
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Contains(t, v.get("/console/customers/"+a.Customer).Body, retryForm)
}
