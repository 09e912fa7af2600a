package console_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/api"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// pastRenewal moves the test clock ten hours past a subscription's next renewal (read from the
// subscription: months differ in length) and short of the first dunning retry (a day later, less 10 %
// jitter), so a declined renewal leaves the subscription past_due with one failed attempt and nothing else
// running. Subscriptions made at the same test-clock instant renew together.
func pastRenewal(env *testenv.Env, a account) {
	env.T.Helper()
	env.AdvanceToRenewal(a.Subscription, 10*time.Hour)
}

type account struct{ Customer, Subscription string }

// subscribe starts a monthly subscription for a new customer whose card works.
func subscribe(t *testing.T, env *testenv.Env, plan string) account {
	t.Helper()
	cus := env.Customer("ok")
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	return account{Customer: cus, Subscription: res.JSON(t)["id"].(string)}
}

// pastDue is one delinquent account: subscribed, its card then declines the renewal (the clock moves
// past it), and the subscription is past_due with one open invoice.
func pastDue(t *testing.T, env *testenv.Env) account {
	t.Helper()
	a := subscribe(t, env, env.CreatePlan("9900", "KRW", "month", 1))
	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+a.Customer, "insufficient"))
	pastRenewal(env, a)
	require.Equal(t, "past_due", env.Subscription(a.Subscription)["status"])
	return a
}

// openInvoice returns the id of the subscription's open invoice.
func openInvoice(t *testing.T, env *testenv.Env, subID string) string {
	t.Helper()
	res := env.Do("GET", "/v1/invoices?status=open&subscription_id="+subID, testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	res.Decode(t, &list)
	require.Len(t, list.Data, 1)
	return list.Data[0].ID
}

// The walk-through: support signs in, narrows the delinquent list, opens an account whose card
// works again, presses "retry now", and sees the account leave the list with the retry in the audit log.
func TestConsoleRetryRecoversAnAccountInTheBrowser(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	soft := subscribe(t, env, plan)   // insufficient funds at renewal, then topped up
	hard := subscribe(t, env, plan)   // a stolen card: a hard decline
	paused := subscribe(t, env, plan) // soft decline, and support paused its dunning
	sim := env.Sim()
	require.NoError(t, sim.SetCustomerBehavior("ck-"+soft.Customer, "insufficient"))
	require.NoError(t, sim.SetCustomerBehavior("ck-"+hard.Customer, "stolen"))
	require.NoError(t, sim.SetCustomerBehavior("ck-"+paused.Customer, "insufficient"))
	pastRenewal(env, soft)
	for _, a := range []account{soft, hard, paused} {
		require.Equal(t, "past_due", env.Subscription(a.Subscription)["status"])
	}
	res := env.Do("POST", "/v1/support/subscriptions/"+paused.Subscription+"/pause-dunning", testenv.SupportToken,
		map[string]any{"reason": "customer on holiday, ticket 7"})
	require.Equal(t, 200, res.Status, string(res.Body))
	invoice := openInvoice(t, env, soft.Subscription)
	attempts := env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1`, invoice)
	// The customer topped the card up: a retry now succeeds.
	require.NoError(t, sim.SetCustomerBehavior("ck-"+soft.Customer, "ok"))

	// A charge at the gateway that our books do not know: reconciliation leaves it for a person.
	now := env.App.Billing.Now()
	_, err := sim.Plant("planted-0001", pgsim.Plant{Amount: decimal.NewFromInt(5000), ApprovedAt: now})
	require.NoError(t, err)
	_, err = env.App.Reconcile.Run(context.Background(), "sim", now.Add(-24*time.Hour), now.Add(time.Hour))
	require.NoError(t, err)

	ctx := tab(t)
	signIn(t, ctx, env, testenv.SupportToken)
	require.Contains(t, text(t, ctx, `#states`), "3\npast due")
	require.Contains(t, text(t, ctx, `#at-risk`), "29,700")
	require.Contains(t, text(t, ctx, `#findings`), "planted-0001")

	// The list, then narrowed by the filters as a person does: pick, apply.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(env.URL+"/console/delinquent"), chromedp.WaitVisible(chromedp.CSS(`#delinquent`))))
	require.ElementsMatch(t, []string{soft.Customer, hard.Customer, paused.Customer}, listedCustomers(t, ctx))
	require.Contains(t, text(t, ctx, `tr[data-customer="`+hard.Customer+`"]`), "hard decline")
	require.Contains(t, text(t, ctx, `tr[data-customer="`+paused.Customer+`"]`), "dunning paused")
	require.Contains(t, text(t, ctx, `#totals`), "29,700")
	screenshot(t, ctx, "delinquent")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#f-decline`), "soft"),
		chromedp.Click(chromedp.CSS(`#apply`)),
	))
	// The list is on the page before and after the click: wait for the filtered page's address first.
	waitLocation(t, ctx, "decline_class=soft")
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#delinquent`))))
	require.ElementsMatch(t, []string{soft.Customer, paused.Customer}, listedCustomers(t, ctx))

	// Open the account from the list.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`tr[data-customer="`+soft.Customer+`"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`#retry-`+invoice)),
	))
	require.Contains(t, text(t, ctx, `#keys`), "active")
	sub := text(t, ctx, `#`+soft.Subscription)
	require.Contains(t, sub, "past due")
	require.Contains(t, sub, "entitled")
	require.Contains(t, text(t, ctx, `#timeline`), "Charge declined")
	// What the state machine allows from past_due is offered; what it does not (resume dunning) is not.
	for _, sel := range []string{`form[action$="/extend-grace"]`, `form[action$="/pause-dunning"]`, `form[action$="/cancel"]`,
		`form[action$="/invoices/` + invoice + `/mark-paid"]`, `form[action$="/invoices/` + invoice + `/void"]`} {
		require.Equal(t, 1, count(t, ctx, sel), sel)
	}
	require.Zero(t, count(t, ctx, `form[action$="/resume-dunning"]`))
	screenshot(t, ctx, "account")

	// Retry now, with a reason.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#retry-reason-`+invoice), "card topped up, ticket 42"),
		chromedp.Click(chromedp.CSS(`#retry-`+invoice)),
		chromedp.WaitVisible(chromedp.CSS(`.flash-ok`)),
	))
	require.Contains(t, text(t, ctx, `.flash-ok`), "succeeded")
	require.Contains(t, text(t, ctx, `#standing`), "none")
	require.Equal(t, 1, count(t, ctx, `#no-open-invoices`))
	tl := text(t, ctx, `#timeline`)
	require.Contains(t, tl, "Support: retry")
	require.Contains(t, tl, "card topped up, ticket 42")
	require.Contains(t, tl, "subscription.recovered")
	screenshot(t, ctx, "account-recovered")

	// It left the list; the other two are still there.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(env.URL+"/console/delinquent"), chromedp.WaitVisible(chromedp.CSS(`#delinquent`))))
	require.ElementsMatch(t, []string{hard.Customer, paused.Customer}, listedCustomers(t, ctx))
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(env.URL+"/console"), chromedp.WaitVisible(chromedp.CSS(`#states`))))
	require.Contains(t, text(t, ctx, `#states`), "2\npast due")
	require.Contains(t, text(t, ctx, `#recovery`), "33%")
	require.Contains(t, text(t, ctx, `#recovery`), "1 of 3")
	screenshot(t, ctx, "overview")

	// The same code path as REST: one audited retry, by the console, with the reason; one more charge.
	require.Equal(t, "active", env.Subscription(soft.Subscription)["status"])
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM audit_log WHERE action = 'retry' AND target_id = $1 AND origin = 'console'
		AND actor LIKE 'console:bootstrap:support:%' AND role = 'support' AND reason = 'card topped up, ticket 42'`, invoice))
	require.Equal(t, attempts+1, env.QueryInt(`SELECT count(*) FROM payment_attempts WHERE invoice_id = $1`, invoice))
	env.RequireBalanced()
}

func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	require.NoError(t, err)
	return n
}

// A support token signs in but cannot open admin pages; an admin sees the API keys, never a token.
func TestConsoleAdminPagesInTheBrowser(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	key, err := api.CreateAPIKey(context.Background(), env.App.Pool, api.RoleService, "merchant backend", time.Now())
	require.NoError(t, err)

	support := tab(t)
	signIn(t, support, env, testenv.SupportToken)
	require.Zero(t, count(t, support, `a[href="/console/api-keys"]`), "no admin link for support")
	resp, err := chromedp.RunResponse(support, chromedp.Navigate(env.URL+"/console/api-keys"))
	require.NoError(t, err)
	require.Equal(t, int64(http.StatusForbidden), resp.Status)
	require.Contains(t, text(t, support, `.error-page`), "Admins only")
	require.Zero(t, count(t, support, `#api-keys`))

	admin := tab(t)
	signIn(t, admin, env, testenv.AdminToken)
	require.NoError(t, chromedp.Do(admin,
		chromedp.Click(chromedp.CSS(`a[href="/console/api-keys"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#api-keys`))))
	keys := text(t, admin, `#api-keys`)
	require.Contains(t, keys, key.ID)
	require.Contains(t, keys, "merchant backend")
	require.Contains(t, keys, key.Token[:8])
	html, err := chromedp.Run(admin, chromedp.OuterHTML(chromedp.CSS(`html`)))
	require.NoError(t, err)
	require.NotContains(t, html, key.Token)

	// Signing out ends the session: the next page is the sign-in form again.
	require.NoError(t, chromedp.Do(admin,
		chromedp.Click(chromedp.CSS(`button.link`)),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.Navigate(env.URL+"/console/api-keys"),
		chromedp.WaitVisible(chromedp.CSS(`#token`))))
	require.Zero(t, env.QueryInt(`SELECT count(*) FROM console_sessions WHERE role = 'admin'`))
}
