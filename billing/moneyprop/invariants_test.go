package moneyprop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/billing"
)

// TestMoneyInvariantsOverRandomOperations runs random sequences of money operations against a whole
// billingd and checks the invariants of docs/money.md after every step (check).
func TestMoneyInvariantsOverRandomOperations(t *testing.T) {
	rapid.Check(t, func(r *rapid.T) {
		w := newWorld(t, r)
		r.Repeat(map[string]func(*rapid.T){
			"":             w.check,
			"new customer": w.newCustomer,
			"card":         w.card,
			"new card":     w.newCard,
			"subscribe":    w.subscribe,
			"renewal":      w.renewal,
			"hours":        w.hours,
			"refund":       w.refund,
			"credit note":  w.creditNote,
			"credit":       w.credit,
			"change plan":  w.changePlan,
			"retry":        w.retry,
			"write off":    w.writeOff,
		})
	})
}

// check is the invariants, each stated over the accounts as billing/ledger.go names them.
func (w *world) check(t *rapid.T) {
	// Settle first: an action may have left work due now for the workers (a card added retries the open
	// invoices), and the books are checked as they stand once it ran.
	w.env.Advance("0s")
	w.trialBalance(t)
	for _, cus := range w.customers {
		w.receivable(t, cus)
		w.customerCredit(t, cus)
	}
	w.invoiceAmounts(t)
	w.gateway(t)
	w.numbers(t)
	w.nothingStuck(t)
}

// The trial balance is zero: the endpoint says so, and the entries sum to zero per currency and per
// transaction.
func (w *world) trialBalance(t *rapid.T) {
	res := w.env.Do("GET", "/v1/ledger/trial-balance", testenv.AdminToken, nil)
	w.want(res, 200)
	if w.body(res)["balanced"] != true {
		t.Fatalf("trial balance: %s", res.Body)
	}
	if off := w.rows(`SELECT currency, sum(amount)::text FROM ledger_entries GROUP BY currency HAVING sum(amount) <> 0`); len(off) > 0 {
		t.Fatalf("the ledger does not sum to zero: %v", off)
	}
	if off := w.rows(`SELECT transaction_id, currency FROM ledger_entries GROUP BY transaction_id, currency HAVING sum(amount) <> 0`); len(off) > 0 {
		t.Fatalf("unbalanced transactions: %v", off)
	}
}

// receivable:<customer> is what the customer's open invoices still ask: amount_due, which is the total
// less what was paid (card payments and the credit applied to it) and less what credit notes took off.
func (w *world) receivable(t *rapid.T, cus string) {
	ledger := w.account(billing.ReceivableAccount(cus))
	due := w.amounts(`SELECT currency, sum(amount_due) FROM invoices WHERE customer_id = $1 AND status = 'open' GROUP BY currency`, cus)
	if !sameAmounts(ledger, due) {
		t.Fatalf("customer %s: receivable %v, open invoices' amount due %v", cus, ledger, due)
	}
	if off := w.rows(`SELECT id, status, total::text, amount_due::text, amount_paid::text, amount_credited::text FROM invoices
		WHERE customer_id = $1 AND status = 'open' AND amount_due <> total - amount_paid - amount_credited`, cus); len(off) > 0 {
		t.Fatalf("open invoices whose amount due is not total - paid - credited: %v", off)
	}
}

// credit:<customer> (a liability: a credit balance) is the credit the customer holds: never negative,
// what the API shows, and what the documents add up to — support's grants less removals, plus credit
// notes to the balance, plus unused time of downgrades (negative proration invoices), less what invoices
// spent (credit_applied; a voided invoice gave its credit back).
func (w *world) customerCredit(t *rapid.T, cus string) {
	held := neg(w.account(billing.CreditAccount(cus)))
	for c, a := range held {
		if a.IsNegative() {
			t.Fatalf("customer %s holds %s %s of credit", cus, a, c)
		}
	}
	res := w.env.Do("GET", "/v1/customers/"+cus, testenv.ServiceToken, nil)
	w.want(res, 200)
	var view struct {
		CreditBalance []struct{ Amount, Currency string } `json:"credit_balance"`
	}
	if err := json.Unmarshal(res.Body, &view); err != nil {
		t.Fatalf("customer %s: %v", cus, err)
	}
	shown := map[string]decimal.Decimal{}
	for _, b := range view.CreditBalance {
		shown[b.Currency] = shown[b.Currency].Add(decimal.RequireFromString(b.Amount))
	}
	if !sameAmounts(held, shown) {
		t.Fatalf("customer %s: credit account %v, shown %v", cus, held, shown)
	}
	docs := w.amounts(`
		SELECT e.currency, -e.amount FROM ledger_entries e JOIN ledger_transactions x ON x.id = e.transaction_id
		WHERE x.kind = 'credit_adjusted' AND e.account = $2
		UNION ALL SELECT currency, amount FROM credit_notes WHERE customer_id = $1 AND method = 'customer_balance' AND status = 'issued'
		UNION ALL SELECT currency, -total FROM invoices WHERE customer_id = $1 AND kind = 'proration' AND total < 0
		UNION ALL SELECT currency, -credit_applied FROM invoices WHERE customer_id = $1 AND status <> 'void'`, cus, billing.CreditAccount(cus))
	if !sameAmounts(held, docs) {
		t.Fatalf("customer %s: credit account %v, documents add up to %v", cus, held, docs)
	}
}

// Per invoice: refunded ≤ paid, and the refunded and credited amounts are the sums of the credit notes
// and refunds behind them; per attempt: refunded ≤ amount, the sum of its succeeded refunds.
func (w *world) invoiceAmounts(t *rapid.T) {
	if off := w.rows(`SELECT id, amount_paid::text, amount_refunded::text FROM invoices WHERE amount_refunded > amount_paid`); len(off) > 0 {
		t.Fatalf("invoices refunded more than paid: %v", off)
	}
	if off := w.rows(`SELECT i.id, i.amount_refunded::text FROM invoices i WHERE i.amount_refunded <>
		(SELECT coalesce(sum(amount), 0) FROM refunds r WHERE r.invoice_id = i.id AND r.status = 'succeeded') +
		(SELECT coalesce(sum(amount), 0) FROM credit_notes c WHERE c.invoice_id = i.id AND c.method = 'customer_balance' AND c.status = 'issued')`); len(off) > 0 {
		t.Fatalf("invoices whose amount_refunded is not their refunds and balance credit notes: %v", off)
	}
	if off := w.rows(`SELECT i.id, i.amount_credited::text FROM invoices i WHERE i.amount_credited <>
		(SELECT coalesce(sum(amount), 0) FROM credit_notes c WHERE c.invoice_id = i.id AND c.method = 'invoice' AND c.status = 'issued')`); len(off) > 0 {
		t.Fatalf("invoices whose amount_credited is not their credit notes: %v", off)
	}
	if off := w.rows(`SELECT a.id, a.amount::text, a.amount_refunded::text FROM payment_attempts a WHERE a.amount_refunded > a.amount OR a.amount_refunded <>
		(SELECT coalesce(sum(amount), 0) FROM refunds r WHERE r.attempt_id = a.id AND r.status = 'succeeded')`); len(off) > 0 {
		t.Fatalf("attempts whose amount_refunded is not their refunds: %v", off)
	}
	if off := w.rows(`SELECT id, status, total::text, amount_paid::text, amount_credited::text, amount_due::text FROM invoices
		WHERE status = 'paid' AND (amount_due <> 0 OR amount_paid + amount_credited < total)`); len(off) > 0 {
		t.Fatalf("paid invoices not paid in full: %v", off)
	}
}

// The gateway's net captured money (pgsim: every charge's amount less its cancels) is the ledger's
// clearing:<gateway> account, per currency; charge by charge, each is one payment attempt of ours that
// succeeded (or was reversed by a full refund), for the same amount and refunded as much.
func (w *world) gateway(t *rapid.T) {
	net := map[string]decimal.Decimal{}
	charges := map[string]decimal.Decimal{}
	refunded := map[string]decimal.Decimal{}
	for _, c := range w.env.Sim().Charges() {
		net[c.Currency] = net[c.Currency].Add(c.BalanceAmount)
		charges[c.OrderID] = c.Amount
		refunded[c.OrderID] = c.Amount.Sub(c.BalanceAmount)
	}
	for c, a := range net {
		if a.IsZero() {
			delete(net, c)
		}
	}
	if ledger := w.account(billing.ClearingAccount("sim")); !sameAmounts(net, ledger) {
		t.Fatalf("the gateway holds %v net, clearing:sim %v", net, ledger)
	}
	ours := map[string]bool{}
	for _, r := range w.rows(`SELECT order_id, amount::text, amount_refunded::text, status FROM payment_attempts WHERE status IN ('succeeded', 'reversed')`) {
		order := r[0].(string)
		ours[order] = true
		amt, ref := decimal.RequireFromString(r[1].(string)), decimal.RequireFromString(r[2].(string))
		got, ok := charges[order]
		switch {
		case !ok:
			t.Fatalf("attempt %s %s has no charge at the gateway", order, r[3])
		case !got.Equal(amt):
			t.Fatalf("attempt %s: %s here, %s at the gateway", order, amt, got)
		case !refunded[order].Equal(ref):
			t.Fatalf("attempt %s: %s refunded here, %s at the gateway", order, ref, refunded[order])
		}
	}
	for order := range charges {
		if !ours[order] {
			t.Fatalf("the gateway charged order %s, which no succeeded attempt of ours has", order)
		}
	}
}

// Invoice and credit-note numbers are gapless per prefix: 1..n in order, n the counter, and every
// finalized invoice has one.
func (w *world) numbers(t *rapid.T) {
	series := map[string][]string{
		"INV":    w.ids(`SELECT number FROM invoices WHERE number IS NOT NULL ORDER BY number`),
		"INV-CN": w.ids(`SELECT number FROM credit_notes ORDER BY number`),
	}
	counters := map[string]int64{}
	for _, r := range w.rows(`SELECT prefix, last_number FROM document_number_counters`) {
		counters[r[0].(string)] = r[1].(int64)
	}
	for prefix, numbers := range series {
		for i, n := range numbers {
			if want := fmt.Sprintf("%s-%06d", prefix, i+1); n != want {
				t.Fatalf("%s numbers: %v; number %d is %s, want %s", prefix, numbers, i+1, n, want)
			}
		}
		if counters[prefix] != int64(len(numbers)) {
			t.Fatalf("%s counter at %d with %d documents", prefix, counters[prefix], len(numbers))
		}
	}
	if off := w.rows(`SELECT id, status FROM invoices WHERE finalized_at IS NOT NULL AND number IS NULL`); len(off) > 0 {
		t.Fatalf("finalized invoices without a number: %v", off)
	}
}

// Nothing is stuck: no domain work is still due at the clock's now (the test clock ran everything due on
// its way; work that stays due failed every time it ran).
func (w *world) nothingStuck(t *rapid.T) {
	due, err := w.env.App.Billing.DueWork(context.Background(), w.env.Now(), 10)
	if err != nil {
		t.Fatalf("due work: %v", err)
	}
	if len(due) > 0 {
		t.Fatalf("work still due at %s: %+v", w.env.Now(), due)
	}
}
