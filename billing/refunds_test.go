package billing_test

import (
	"context"
	"sync"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// paidInvoice subscribes a customer whose card pays and returns the customer, subscription and the paid
// initial invoice with its order id at the gateway.
func paidInvoice(t *testing.T, env *testenv.Env, plan string) (cus, sub, inv, order string) {
	t.Helper()
	cus = env.Customer(pgsim.BehaviorOK)
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub = res.JSON(t)["id"].(string)
	invs := subInvoices(t, env, sub)
	require.Len(t, invs, 1)
	inv = invs[0]["id"].(string)
	require.Equal(t, "paid", invs[0]["status"])
	return cus, sub, inv, invs[0]["attempts"].([]any)[0].(map[string]any)["order_id"].(string)
}

func refund(env *testenv.Env, token, inv string, body map[string]any) testenv.Response {
	return env.Do("POST", "/v1/invoices/"+inv+"/refunds", token, body)
}

func getInv(t *testing.T, env *testenv.Env, id string) map[string]any {
	t.Helper()
	res := env.Do("GET", "/v1/invoices/"+id, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	return res.JSON(t)
}

func accountBalance(t *testing.T, env *testenv.Env, account, currency string) string {
	t.Helper()
	var b decimal.Decimal
	require.NoError(t, env.App.Pool.QueryRow(context.Background(),
		`SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE account = $1 AND currency = $2`, account, currency).Scan(&b))
	return b.String()
}

// Two partial refunds to the card go to the gateway as partial cancels, up to what was paid and no
// further; each is a numbered credit note, booked in the ledger, audited and announced.
func TestPartialRefundsToTheCardUpToWhatWasPaid(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	_, _, inv, order := paidInvoice(t, env, plan)

	res := refund(env, testenv.ServiceToken, inv, map[string]any{"amount": "3000", "reason": "goodwill"})
	require.Equal(t, 201, res.Status, string(res.Body))
	cn := res.JSON(t)
	require.Equal(t, "INV-CN-000001", cn["number"])
	require.Equal(t, "refund", cn["method"])
	require.Equal(t, "issued", cn["status"])
	require.Equal(t, "api", cn["origin"])
	require.Equal(t, inv, cn["invoice_id"])
	require.Equal(t, "3000", cn["amount"])
	require.Len(t, cn["lines"], 1)
	re := cn["refund"].(map[string]any)
	require.Equal(t, "succeeded", re["status"])
	c, ok := env.Sim().Charge(order)
	require.True(t, ok)
	require.Equal(t, "PARTIAL_CANCELED", c.Status)
	require.Equal(t, "6900", c.BalanceAmount.String())

	// Above what is left: refused, nothing sent.
	res = refund(env, testenv.SupportToken, inv, map[string]any{"amount": "7000", "reason": "too much"})
	require.Equal(t, 422, res.Status, string(res.Body))
	require.Equal(t, "refund_exceeds_refundable", res.JSON(t)["code"])
	require.Equal(t, "6900", res.JSON(t)["refundable"])

	// The rest, by support: the payment is fully refunded and its attempt reversed.
	res = refund(env, testenv.SupportToken, inv, map[string]any{"reason": "customer left"})
	require.Equal(t, 201, res.Status, string(res.Body))
	cn2 := res.JSON(t)
	require.Equal(t, "INV-CN-000002", cn2["number"])
	require.Equal(t, "6900", cn2["amount"])
	require.Equal(t, "support", cn2["origin"])
	c, _ = env.Sim().Charge(order)
	require.Equal(t, "CANCELED", c.Status)
	require.Len(t, c.Cancels, 2)

	got := getInv(t, env, inv)
	require.Equal(t, "paid", got["status"])
	require.Equal(t, "9900", got["amount_refunded"])
	require.Equal(t, "reversed", got["attempts"].([]any)[0].(map[string]any)["status"])
	res = refund(env, testenv.ServiceToken, inv, map[string]any{"amount": "1", "reason": "more"})
	require.Equal(t, 422, res.Status, string(res.Body))

	require.Equal(t, "9900", accountBalance(t, env, "refunds", "KRW"))
	require.Equal(t, "0", accountBalance(t, env, "clearing:sim", "KRW"))
	env.RequireBalanced()
	require.Equal(t, 2, env.QueryInt(`SELECT count(*) FROM audit_log WHERE action = 'refund' AND target_id = $1`, inv))
	require.Equal(t, 2, env.QueryInt(`SELECT count(*) FROM events WHERE type = 'refund.succeeded' AND invoice_id = $1`, inv))

	list := env.Do("GET", "/v1/credit-notes?invoice_id="+inv, testenv.SupportToken, nil)
	require.Equal(t, 200, list.Status, string(list.Body))
	require.Len(t, list.JSON(t)["data"], 2)
	require.Equal(t, 404, env.Do("GET", "/v1/credit-notes/cn_nope", testenv.ServiceToken, nil).Status)
}

// 50 concurrent partial refunds on one invoice, through two replicas, never refund more than was paid:
// exactly as many succeed as fit, the gateway saw exactly that much, and the books agree.
func TestConcurrentPartialRefundsNeverExceedWhatWasPaid(t *testing.T) {
	t.Parallel()
	a := testenv.New(t)
	b := testenv.New(t, testenv.Options{DBURL: a.DBURL, SimURL: a.App.SimURL})
	plan := a.CreatePlan("9900", "KRW", "month", 1)
	_, _, inv, order := paidInvoice(t, a, plan)

	const n = 50
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for i := range n {
		env := a
		if i%2 == 1 {
			env = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := env.Do("POST", "/v1/invoices/"+inv+"/refunds", testenv.ServiceToken, map[string]any{"amount": "300", "reason": "race"})
			statuses <- res.Status
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	require.Equal(t, map[int]int{201: 33, 422: 17}, count, "9900 / 300 = 33 refunds fit")
	c, _ := a.Sim().Charge(order)
	require.Equal(t, "CANCELED", c.Status)
	require.Equal(t, "0", c.BalanceAmount.String())
	require.Len(t, c.Cancels, 33)
	require.Equal(t, "9900", getInv(t, a, inv)["amount_refunded"])
	require.Equal(t, "9900", accountBalance(t, a, "refunds", "KRW"))
	a.RequireBalanced()
}

// A refund whose answer is lost is unknown, not failed and not retried blindly: the lookup finds it at
// the gateway and books it once. A refund the gateway never received is resent with the same key.
func TestRefundWithUnknownOutcomeIsLookedUp(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	_, _, inv, order := paidInvoice(t, env, plan)

	env.Sim().SetFaults(pgsim.Faults{Cancels: &pgsim.ChargeFaults{CommitThenTimeout: &pgsim.CommitThenTimeoutFault{Rule: pgsim.Rule{Count: 1}}}})
	res := refund(env, testenv.ServiceToken, inv, map[string]any{"amount": "1000", "reason": "lost answer"})
	require.Equal(t, 201, res.Status, string(res.Body))
	cn := res.JSON(t)
	require.Equal(t, "pending", cn["status"])
	require.Equal(t, "unknown", cn["refund"].(map[string]any)["status"])
	c, _ := env.Sim().Charge(order)
	require.Len(t, c.Cancels, 1, "the gateway booked it")
	require.Equal(t, "0", accountBalance(t, env, "refunds", "KRW"), "nothing booked on a guess")

	env.Sim().SetFaults(pgsim.Faults{Cancels: &pgsim.ChargeFaults{Error5xxBeforeCommit: &pgsim.Rule{Count: 1}}})
	res = refund(env, testenv.ServiceToken, inv, map[string]any{"amount": "2000", "reason": "never arrived"})
	require.Equal(t, 201, res.Status, string(res.Body))
	cn2 := res.JSON(t)
	require.Equal(t, "pending", cn2["status"])
	env.Sim().ClearFaults()

	env.Advance("2m")
	for _, id := range []string{cn["id"].(string), cn2["id"].(string)} {
		got := env.Do("GET", "/v1/credit-notes/"+id, testenv.ServiceToken, nil).JSON(t)
		require.Equal(t, "issued", got["status"], "%v", got)
		require.Equal(t, "succeeded", got["refund"].(map[string]any)["status"])
	}
	c, _ = env.Sim().Charge(order)
	require.Len(t, c.Cancels, 2, "one cancel each, however often asked")
	require.Equal(t, "6900", c.BalanceAmount.String())
	require.Equal(t, "3000", accountBalance(t, env, "refunds", "KRW"))
	require.Equal(t, "3000", getInv(t, env, inv)["amount_refunded"])
	env.RequireBalanced()
}

// A credit to the customer's balance is a credit note too; the next invoice spends it before the card.
func TestRefundToTheCustomersBalanceIsSpentByTheNextInvoice(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus, sub, inv, order := paidInvoice(t, env, plan)

	res := refund(env, testenv.SupportToken, inv, map[string]any{"amount": "9900", "reason": "service outage", "to": "credit"})
	require.Equal(t, 201, res.Status, string(res.Body))
	cn := res.JSON(t)
	require.Equal(t, "customer_balance", cn["method"])
	require.Equal(t, "issued", cn["status"])
	require.Nil(t, cn["refund"])
	c, _ := env.Sim().Charge(order)
	require.Equal(t, "DONE", c.Status, "nothing went to the card")
	bal := env.Do("GET", "/v1/customers/"+cus+"/balance", testenv.ServiceToken, nil).JSON(t)
	require.Equal(t, []any{map[string]any{"amount": "9900", "currency": "KRW"}}, bal["credit"])
	require.Equal(t, 422, refund(env, testenv.SupportToken, inv, map[string]any{"amount": "1", "reason": "x", "to": "card"}).Status)

	env.AdvanceToRenewal(sub, 0)
	invs := subInvoices(t, env, sub)
	require.Len(t, invs, 2)
	require.Equal(t, "paid", invs[1]["status"])
	require.Empty(t, invs[1]["attempts"], "the credit paid it; no card was charged")
	require.Len(t, env.Sim().Charges(), 1)
	env.RequireBalanced()
}

// Against an open invoice a credit note lowers what is due, and one for the rest settles it (the
// subscription becomes active as with any payment).
func TestCreditNoteOnAnOpenInvoiceLowersAndSettlesIt(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer(pgsim.BehaviorInsufficient)
	res := env.Subscribe(cus, plan)
	require.Equal(t, 402, res.Status, string(res.Body))
	inv := res.JSON(t)["invoice_id"].(string)
	sub := res.JSON(t)["subscription_id"].(string)

	require.Equal(t, 422, refund(env, testenv.SupportToken, inv, map[string]any{"amount": "100", "reason": "x", "to": "card"}).Status)
	require.Equal(t, 422, refund(env, testenv.SupportToken, inv, map[string]any{"amount": "10000", "reason": "x"}).Status)
	res = refund(env, testenv.SupportToken, inv, map[string]any{"amount": "4000", "reason": "discount agreed"})
	require.Equal(t, 201, res.Status, string(res.Body))
	require.Equal(t, "invoice", res.JSON(t)["method"])
	got := getInv(t, env, inv)
	require.Equal(t, "open", got["status"])
	require.Equal(t, "5900", got["amount_due"])
	require.Equal(t, "4000", got["amount_credited"])

	res = refund(env, testenv.SupportToken, inv, map[string]any{"reason": "waived the rest"})
	require.Equal(t, 201, res.Status, string(res.Body))
	require.Equal(t, "5900", res.JSON(t)["amount"])
	got = getInv(t, env, inv)
	require.Equal(t, "paid", got["status"])
	require.Equal(t, "0", got["amount_due"])
	require.Equal(t, "active", env.Subscription(sub)["status"])
	require.Equal(t, "9900", accountBalance(t, env, "credit_notes", "KRW"))
	require.Equal(t, "0", accountBalance(t, env, "receivable:"+cus, "KRW"))
	env.RequireBalanced()
}
