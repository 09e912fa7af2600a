package moneyprop_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/internal/testdb"
	"github.com/dunningworks/billing/money"
)

// TestMain gives rapid this package's defaults: a few short sequences in `make test` (each check starts a
// whole billingd on a fresh database), more when asked with -rapid.checks / -rapid.steps or RAPID_CHECKS /
// RAPID_STEPS, e.g.
//
//	go test -race ./billing/moneyprop -rapid.checks=200 -rapid.steps=40
func TestMain(m *testing.M) {
	flag.Parse()
	given := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, def := range map[string][2]string{"rapid.checks": {"RAPID_CHECKS", "10"}, "rapid.steps": {"RAPID_STEPS", "12"}} {
		if !given[name] && os.Getenv(def[0]) == "" {
			if err := flag.Set(name, def[1]); err != nil {
				panic(err)
			}
		}
	}
	os.Exit(testdb.Main(m))
}

// checkTB is the testing.TB a check's billingd runs under: failures go to rapid (so it shrinks the
// sequence), cleanups run when the check ends (the billingd stops and its database is dropped), and
// everything else (name, logs) is the test's.
type checkTB struct {
	testing.TB
	r *rapid.T
}

func (c checkTB) Cleanup(f func())                  { c.r.Cleanup(f) }
func (c checkTB) Error(args ...any)                 { c.r.Helper(); c.r.Error(args...) }
func (c checkTB) Errorf(format string, args ...any) { c.r.Helper(); c.r.Errorf(format, args...) }
func (c checkTB) Fail()                             { c.r.Fail() }
func (c checkTB) FailNow()                          { c.r.FailNow() }
func (c checkTB) Failed() bool                      { return c.r.Failed() }
func (c checkTB) Fatal(args ...any)                 { c.r.Helper(); c.r.Fatal(args...) }
func (c checkTB) Fatalf(format string, args ...any) { c.r.Helper(); c.r.Fatalf(format, args...) }
func (c checkTB) Skip(args ...any)                  { c.r.Skip(args...) }
func (c checkTB) Skipf(format string, args ...any)  { c.r.Skipf(format, args...) }
func (c checkTB) SkipNow()                          { c.r.SkipNow() }

type plan struct {
	id       string
	currency string
}

// world is one check's billingd and what the sequence made in it, in the order it made it (so a draw
// picks the same thing when rapid replays the sequence on a fresh database).
type world struct {
	env       *testenv.Env
	tb        checkTB
	plans     []plan
	coupons   []string
	customers []string
	subs      []string
}

func newWorld(t *testing.T, r *rapid.T) *world {
	tb := checkTB{TB: t, r: r}
	env := testenv.New(tb)
	w := &world{env: env, tb: tb}
	res := env.Do("POST", "/v1/tax-rates", testenv.AdminToken, map[string]any{"name": "Sales tax", "percentage": "10", "inclusive": false})
	w.want(res, 201)
	excl := w.body(res)["id"].(string)
	// Tax-inclusive (Korean VAT), tax-exclusive and untaxed plans in a currency without minor units and in
	// one with two; all monthly, so any two of a currency can be changed between.
	for _, p := range []struct{ amount, currency, rate string }{
		{"9900", "KRW", "txr_kr_vat"}, {"12345", "KRW", excl}, {"30000", "KRW", ""},
		{"9.90", "USD", "txr_kr_vat"}, {"19.99", "USD", excl}, {"49.99", "USD", ""},
	} {
		body := map[string]any{"code": "p-" + p.amount + "-" + p.currency, "name": "Plan " + p.amount + " " + p.currency,
			"amount": p.amount, "currency": p.currency, "interval": "month", "interval_count": 1}
		if p.rate != "" {
			body["tax_rate_id"] = p.rate
		}
		res := env.Do("POST", "/v1/plans", testenv.AdminToken, body)
		w.want(res, 201)
		w.plans = append(w.plans, plan{id: w.body(res)["id"].(string), currency: p.currency})
	}
	for _, c := range []map[string]any{
		{"code": "P20", "percent_off": "20", "duration": "forever"},
		{"code": "HALF2", "percent_off": "50", "duration": "repeating", "duration_in_intervals": 2},
		{"code": "K3000", "amount_off": "3000", "currency": "KRW", "duration": "once"},
		{"code": "U5", "amount_off": "5.00", "currency": "USD", "duration": "once"},
	} {
		w.want(env.Do("POST", "/v1/coupons", testenv.AdminToken, c), 201)
		w.coupons = append(w.coupons, c["code"].(string))
	}
	w.customers = append(w.customers, env.Customer(pgsim.BehaviorOK))
	return w
}

func (w *world) want(res testenv.Response, statuses ...int) {
	w.tb.Helper()
	for _, s := range statuses {
		if res.Status == s {
			return
		}
	}
	w.tb.Fatalf("status %d, want one of %v: %s", res.Status, statuses, res.Body)
}

func (w *world) body(res testenv.Response) map[string]any {
	w.tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(res.Body, &m); err != nil {
		w.tb.Fatalf("body %s: %v", res.Body, err)
	}
	return m
}

// code is a problem's code ("" when the body is not one).
func (w *world) code(res testenv.Response) string {
	var m map[string]any
	_ = json.Unmarshal(res.Body, &m)
	c, _ := m["code"].(string)
	return c
}

func (w *world) rows(sql string, args ...any) [][]any {
	w.tb.Helper()
	rows, err := w.env.App.Pool.Query(context.Background(), sql, args...)
	if err != nil {
		w.tb.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			w.tb.Fatalf("%s: %v", sql, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		w.tb.Fatalf("%s: %v", sql, err)
	}
	return out
}

// amounts runs a query of (currency, amount) rows into a map; zero amounts are left out.
func (w *world) amounts(sql string, args ...any) map[string]decimal.Decimal {
	w.tb.Helper()
	rows, err := w.env.App.Pool.Query(context.Background(), sql, args...)
	if err != nil {
		w.tb.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	out := map[string]decimal.Decimal{}
	for rows.Next() {
		var cur string
		var amt decimal.Decimal
		if err := rows.Scan(&cur, &amt); err != nil {
			w.tb.Fatalf("%s: %v", sql, err)
		}
		out[cur] = out[cur].Add(amt)
	}
	if err := rows.Err(); err != nil {
		w.tb.Fatalf("%s: %v", sql, err)
	}
	for c, a := range out {
		if a.IsZero() {
			delete(out, c)
		}
	}
	return out
}

// account is a ledger account's balance per currency (debit positive).
func (w *world) account(name string) map[string]decimal.Decimal {
	w.tb.Helper()
	return w.amounts(`SELECT currency, coalesce(sum(amount), 0) FROM ledger_entries WHERE account = $1 GROUP BY currency`, name)
}

func neg(m map[string]decimal.Decimal) map[string]decimal.Decimal {
	out := map[string]decimal.Decimal{}
	for c, a := range m {
		out[c] = a.Neg()
	}
	return out
}

func sameAmounts(a, b map[string]decimal.Decimal) bool {
	for c, x := range a {
		if !x.Equal(b[c]) {
			return false
		}
	}
	for c, y := range b {
		if !y.Equal(a[c]) {
			return false
		}
	}
	return true
}

// pick draws one of ids, or skips the action when there is none.
func pick(t *rapid.T, label string, ids []string) string {
	if len(ids) == 0 {
		t.Skip("no " + label)
	}
	return ids[rapid.IntRange(0, len(ids)-1).Draw(t, label)]
}

// drawAmount draws an amount of currency from one minor unit to most (inclusive), or one minor unit over
// it when over is true.
func drawAmount(t *rapid.T, label, currency string, most decimal.Decimal, over bool) string {
	places, err := money.MinorUnit(currency)
	if err != nil {
		t.Fatalf("%s: %v", currency, err)
	}
	minor := most.Shift(int32(places)).IntPart()
	n := minor + 1
	if !over {
		n = rapid.Int64Range(1, max(1, minor)).Draw(t, label)
	}
	return decimal.New(n, -int32(places)).StringFixed(int32(places))
}

func (w *world) ids(sql string, args ...any) []string {
	w.tb.Helper()
	var out []string
	for _, r := range w.rows(sql, args...) {
		out = append(out, r[0].(string))
	}
	return out
}

// --- actions -------------------------------------------------------------------------------------------

func (w *world) newCustomer(t *rapid.T) {
	if len(w.customers) >= 3 {
		t.Skip("enough customers")
	}
	w.customers = append(w.customers, w.env.Customer(pgsim.BehaviorOK))
}

// card makes a customer's card decline (softly or hard) or pay again from the next charge on.
func (w *world) card(t *rapid.T) {
	cus := pick(t, "customer", w.customers)
	b := rapid.SampledFrom([]string{pgsim.BehaviorOK, pgsim.BehaviorInsufficient, pgsim.BehaviorStolen}).Draw(t, "behavior")
	if err := w.env.Sim().SetCustomerBehavior("ck-"+cus, b); err != nil {
		t.Fatalf("set behavior: %v", err)
	}
}

// newCard is the customer registering another card that pays (the recovery after a hard decline).
func (w *world) newCard(t *rapid.T) {
	cus := pick(t, "customer", w.customers)
	w.env.AddKey(cus, pgsim.BehaviorOK)
}

func (w *world) subscribe(t *rapid.T) {
	cus := pick(t, "customer", w.customers)
	p := rapid.SampledFrom(w.plans).Draw(t, "plan")
	body := map[string]any{"customer_id": cus, "plan_id": p.id}
	if c := rapid.SampledFrom(append([]string{""}, w.coupons...)).Draw(t, "coupon"); c != "" {
		body["coupon"] = c
	}
	res := w.env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, body)
	w.want(res, 201, 202, 402, 422)
	switch res.Status {
	case 201, 202:
		w.subs = append(w.subs, w.body(res)["id"].(string))
	case 402:
		w.subs = append(w.subs, w.body(res)["subscription_id"].(string))
	case 422:
		// A fixed coupon in another currency; a customer whose card was reported stolen has no key to charge.
		if c := w.code(res); c != "coupon_not_applicable" && c != "no_billing_key" {
			t.Fatalf("subscribe refused with %s: %s", c, res.Body)
		}
	}
}

// renewal moves the test clock just past one subscription's next renewal (and through all the work that
// falls due on the way: other renewals, retries, grace and dunning ends).
func (w *world) renewal(t *rapid.T) {
	var due []string
	at := map[string]time.Time{}
	for _, id := range w.subs {
		r := w.rows(`SELECT next_renewal_at FROM subscriptions WHERE id = $1 AND next_renewal_at IS NOT NULL`, id)
		if len(r) == 1 {
			due = append(due, id)
			at[id] = r[0][0].(time.Time)
		}
	}
	id := pick(t, "subscription", due)
	now := w.env.Now()
	if !at[id].After(now) || at[id].Sub(now) > 40*24*time.Hour {
		t.Skip("renewal not ahead")
	}
	w.env.AdvanceTo(at[id].Add(time.Second))
}

// hours moves the test clock a few hours to days: retries, grace periods, incomplete expiry, dunning ends.
func (w *world) hours(t *rapid.T) {
	w.env.Advance(fmt.Sprintf("%dh", rapid.IntRange(1, 96).Draw(t, "hours")))
}

// refund gives money back on a paid invoice: all or part, to the card or the balance, sometimes more than
// is left (refused).
func (w *world) refund(t *rapid.T) {
	rows := w.rows(`SELECT id, currency, (amount_paid - amount_refunded)::text FROM invoices WHERE status = 'paid' AND amount_paid > 0 ORDER BY number`)
	var ids []string
	left := map[string]decimal.Decimal{}
	cur := map[string]string{}
	for _, r := range rows {
		id := r[0].(string)
		ids = append(ids, id)
		cur[id] = r[1].(string)
		left[id] = numeric(t, r[2])
	}
	inv := pick(t, "paid invoice", ids)
	body := map[string]any{"reason": "property test"}
	how := rapid.SampledFrom([]string{"all", "part", "over"}).Draw(t, "how much")
	switch how {
	case "part":
		body["amount"] = drawAmount(t, "amount", cur[inv], left[inv], false)
	case "over":
		body["amount"] = drawAmount(t, "amount", cur[inv], left[inv], true)
	}
	to := rapid.SampledFrom([]string{"", "card", "credit"}).Draw(t, "to")
	if to != "" {
		body["to"] = to
	}
	token := rapid.SampledFrom([]string{testenv.ServiceToken, testenv.SupportToken}).Draw(t, "who")
	res := w.env.Do("POST", "/v1/invoices/"+inv+"/refunds", token, body)
	w.want(res, 201, 422)
	nothingLeft := !left[inv].IsPositive()
	switch {
	case res.Status == 201 && (how == "over" || nothingLeft):
		t.Fatalf("refund of more than is left (%s) was made: %s", left[inv], res.Body)
	case res.Status == 422 && how != "over" && !nothingLeft && to == "credit":
		t.Fatalf("refund to the balance within what is left (%s) was refused: %s", left[inv], res.Body)
	case res.Status == 422 && w.code(res) != "refund_exceeds_refundable":
		t.Fatalf("refund refused with %s: %s", w.code(res), res.Body)
	case res.Status == 201:
		if st := w.body(res)["status"]; st != "issued" {
			t.Fatalf("credit note %v with no gateway fault: %s", st, res.Body)
		}
	}
}

// creditNote lowers (or settles) what an open invoice asks.
func (w *world) creditNote(t *rapid.T) {
	rows := w.rows(`SELECT id, currency, amount_due::text FROM invoices WHERE status = 'open' ORDER BY number`)
	var ids []string
	due := map[string]decimal.Decimal{}
	cur := map[string]string{}
	for _, r := range rows {
		id := r[0].(string)
		ids = append(ids, id)
		cur[id] = r[1].(string)
		due[id] = numeric(t, r[2])
	}
	inv := pick(t, "open invoice", ids)
	body := map[string]any{"reason": "property test"}
	how := rapid.SampledFrom([]string{"all", "part", "over"}).Draw(t, "how much")
	switch how {
	case "part":
		body["amount"] = drawAmount(t, "amount", cur[inv], due[inv], false)
	case "over":
		body["amount"] = drawAmount(t, "amount", cur[inv], due[inv], true)
	}
	res := w.env.Do("POST", "/v1/invoices/"+inv+"/refunds", testenv.SupportToken, body)
	w.want(res, 201, 409, 422)
	switch {
	case res.Status == 201 && (how == "over" || !due[inv].IsPositive()):
		t.Fatalf("credit note of more than is due (%s) was made: %s", due[inv], res.Body)
	case res.Status == 422 && how != "over" && due[inv].IsPositive():
		t.Fatalf("credit note within what is due (%s) was refused: %s", due[inv], res.Body)
	}
}

// credit is support granting or removing customer credit, sometimes more than the customer holds.
func (w *world) credit(t *rapid.T) {
	cus := pick(t, "customer", w.customers)
	cur := rapid.SampledFrom([]string{"KRW", "USD"}).Draw(t, "currency")
	held := neg(w.account(billing.CreditAccount(cus)))[cur]
	amount := ""
	how := rapid.SampledFrom([]string{"grant", "remove", "remove too much"}).Draw(t, "how")
	switch how {
	case "grant":
		most := map[string]decimal.Decimal{"KRW": decimal.NewFromInt(20000), "USD": decimal.RequireFromString("50.00")}[cur]
		amount = drawAmount(t, "amount", cur, most, false)
	case "remove":
		if !held.IsPositive() {
			t.Skip("no credit to remove")
		}
		amount = "-" + drawAmount(t, "amount", cur, held, false)
	default:
		amount = "-" + drawAmount(t, "amount", cur, held, true)
	}
	res := w.env.Do("POST", "/v1/customers/"+cus+"/credit", testenv.SupportToken,
		map[string]any{"amount": amount, "currency": cur, "reason": "property test"})
	w.want(res, 200, 422)
	if (res.Status == 422) != (how == "remove too much") {
		t.Fatalf("credit %s %s (held %s): %d %s", amount, cur, held, res.Status, res.Body)
	}
}

// changePlan moves an active subscription to another plan of its currency, now or at the period end,
// sometimes with a coupon.
func (w *world) changePlan(t *rapid.T) {
	var active []string
	for _, id := range w.subs {
		if len(w.rows(`SELECT 1 FROM subscriptions WHERE id = $1 AND status IN ('active', 'trialing')`, id)) == 1 {
			active = append(active, id)
		}
	}
	sub := pick(t, "active subscription", active)
	cur := w.rows(`SELECT p.currency FROM subscriptions s JOIN plans p ON p.id = s.plan_id WHERE s.id = $1`, sub)[0][0].(string)
	var same []string
	for _, p := range w.plans {
		if p.currency == cur {
			same = append(same, p.id)
		}
	}
	body := map[string]any{"plan_id": pick(t, "plan", same)}
	if timing := rapid.SampledFrom([]string{"", "immediate", "period_end"}).Draw(t, "timing"); timing != "" {
		body["timing"] = timing
	}
	if c := rapid.SampledFrom(append([]string{""}, w.coupons...)).Draw(t, "coupon"); c != "" {
		body["coupon"] = c
	}
	res := w.env.Do("POST", "/v1/subscriptions/"+sub+"/change-plan", testenv.ServiceToken, body)
	w.want(res, 200, 409, 422)
}

// retry is support retrying an open invoice now (a recovery when the card pays again).
func (w *world) retry(t *rapid.T) {
	inv := pick(t, "open invoice", w.ids(`SELECT id FROM invoices WHERE status = 'open' ORDER BY number`))
	res := w.env.Do("POST", "/v1/support/invoices/"+inv+"/retry", testenv.SupportToken, map[string]any{"reason": "property test"})
	w.want(res, 200, 409, 422)
}

// writeOff is support giving up on an open invoice.
func (w *world) writeOff(t *rapid.T) {
	inv := pick(t, "open invoice", w.ids(`SELECT id FROM invoices WHERE status = 'open' ORDER BY number`))
	res := w.env.Do("POST", "/v1/support/invoices/"+inv+"/write-off", testenv.SupportToken, map[string]any{"reason": "property test"})
	w.want(res, 200, 409, 422)
}

func numeric(t *rapid.T, v any) decimal.Decimal {
	switch n := v.(type) {
	case decimal.Decimal:
		return n
	default:
		d, err := decimal.NewFromString(fmt.Sprint(v))
		if err != nil {
			t.Fatalf("numeric %v (%T): %v", v, v, err)
		}
		return d
	}
}
