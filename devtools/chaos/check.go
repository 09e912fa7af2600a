package chaos

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
)

// check runs every invariant against our database and the gateway's ledger.
func check(ctx context.Context, pool *pgxpool.Pool, charges []simCharge, rep *Report) {
	add := func(name string, violations []string) {
		c := Check{Name: name, OK: len(violations) == 0}
		if !c.OK {
			c.Note = fmt.Sprintf("%d violation(s)", len(violations))
			for i, v := range violations {
				if i == 20 {
					rep.Violations = append(rep.Violations, fmt.Sprintf("%s: ... and %d more", name, len(violations)-20))
					break
				}
				rep.Violations = append(rep.Violations, name+": "+v)
			}
		}
		rep.Checks = append(rep.Checks, c)
	}
	q := func(sql string, args ...any) []string {
		rows, err := pool.Query(ctx, sql, args...)
		if err != nil {
			return []string{"query failed: " + err.Error()}
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return []string{"scan failed: " + err.Error()}
			}
			out = append(out, s)
		}
		return out
	}

	// 1. The bank's side: every net charge belongs to one attempt of ours that succeeded with the same
	// amount, on a paid invoice; at most one charge per invoice and per (subscription, period).
	var v1, v2 []string
	perInvoice := map[string]int{}
	for _, c := range charges {
		if c.Status == "CANCELED" {
			continue
		}
		var status, invStatus, invoiceID string
		var amount decimal.Decimal
		err := pool.QueryRow(ctx, `SELECT a.status, a.amount, i.status, i.id FROM payment_attempts a JOIN invoices i ON i.id = a.invoice_id
			WHERE a.order_id = $1`, c.OrderID).Scan(&status, &amount, &invStatus, &invoiceID)
		if err != nil {
			v1 = append(v1, fmt.Sprintf("charge %s (%s) at the gateway has no attempt here", c.OrderID, c.Amount))
			continue
		}
		theirs, _ := decimal.NewFromString(c.Amount)
		if status != "succeeded" || !amount.Equal(theirs) || invStatus != "paid" {
			v1 = append(v1, fmt.Sprintf("charge %s %s: attempt %s %s, invoice %s", c.OrderID, c.Amount, status, amount, invStatus))
		}
		perInvoice[invoiceID]++
	}
	for inv, n := range perInvoice {
		if n > 1 {
			v2 = append(v2, fmt.Sprintf("invoice %s charged %d times", inv, n))
		}
	}
	v2 = append(v2, q(`SELECT subscription_id || ' ' || period_start::text FROM invoices WHERE kind IN ('initial', 'renewal')
		GROUP BY subscription_id, period_start HAVING count(*) > 1`)...)
	add("every gateway charge belongs to a paid invoice of the same amount", v1)
	add("at most one net charge per invoice and per (subscription, period)", v2)
	// Each customer signed up once (one Idempotency-Key, retried across kills): one subscription each.
	add("one subscription per signup", q(`SELECT customer_id || ' has ' || count(*) || ' subscriptions' FROM subscriptions
		GROUP BY customer_id HAVING count(*) > 1`))

	// 2. Nothing missing: every succeeded attempt is a charge at the gateway.
	done := map[string]bool{}
	for _, c := range charges {
		if c.Status != "CANCELED" {
			done[c.OrderID] = true
		}
	}
	var v3 []string
	for _, o := range q(`SELECT order_id FROM payment_attempts WHERE status = 'succeeded' AND offline_reference IS NULL`) {
		if !done[o] {
			v3 = append(v3, "succeeded attempt "+o+" has no charge at the gateway")
		}
	}
	add("every succeeded attempt is a charge at the gateway", v3)

	// 3. Everything resolved; nothing stuck.
	add("no attempt left pending or unknown", q(`SELECT id || ' ' || status FROM payment_attempts WHERE status IN ('pending', 'unknown')`))
	// Stuck: running far past the job timeout and the rescue (so not a job orphaned by the last kills,
	// which River rescues), or runnable and not picked up. A job simply running right now is neither.
	add("no River job stuck or discarded", q(`SELECT kind || ' ' || state || ' ' || coalesce(errors[array_upper(errors, 1)]->>'error', '')
		FROM river_job WHERE state = 'discarded'
		   OR (state = 'running' AND attempted_at < now() - interval '2 minutes')
		   OR (state = 'available' AND scheduled_at < now() - interval '1 minute')`))

	// 4. Every due invoice is paid, in dunning on a schedule, or closed by policy; every renewal done.
	add("every open invoice is on a schedule", q(`SELECT i.id || ' (' || s.status || ')' FROM invoices i
		JOIN subscriptions s ON s.id = i.subscription_id, test_clock c
		WHERE i.status = 'open' AND NOT (
			i.next_attempt_at IS NOT NULL
			OR (s.status IN ('past_due', 'suspended') AND s.dunning_ends_at > c.now)
			OR (s.status = 'incomplete' AND s.incomplete_expires_at > c.now)
			OR s.dunning_paused
			OR EXISTS (SELECT 1 FROM payment_attempts a WHERE a.invoice_id = i.id AND a.status IN ('pending', 'unknown')))`))
	add("no renewal left due", q(`SELECT s.id FROM subscriptions s, test_clock c
		WHERE s.status IN ('active', 'trialing', 'past_due') AND s.next_renewal_at <= c.now`))

	// 5. The ledger balances, and each customer's receivable is exactly what their open invoices ask.
	add("trial balance is zero per currency", q(`SELECT currency || ' ' || sum(amount)::text FROM ledger_entries GROUP BY currency HAVING sum(amount) <> 0`))
	add("each customer's receivable equals their open invoices", q(`
		WITH rec AS (SELECT substr(account, 12) AS customer_id, currency, sum(amount) AS bal FROM ledger_entries
		             WHERE account LIKE 'receivable:%' GROUP BY 1, 2),
		     due AS (SELECT customer_id, currency, sum(amount_due) AS due FROM invoices WHERE status = 'open' GROUP BY 1, 2)
		SELECT coalesce(rec.customer_id, due.customer_id) || ' ' || coalesce(rec.currency, due.currency) || ' ledger ' ||
		       coalesce(rec.bal, 0)::text || ' open ' || coalesce(due.due, 0)::text
		FROM rec FULL JOIN due ON rec.customer_id = due.customer_id AND rec.currency = due.currency
		WHERE coalesce(rec.bal, 0) <> coalesce(due.due, 0)`))

	// 6. The outbox is complete: every transition has its event.
	var v6 []string
	for _, c := range []struct{ what, sql string }{
		{"paid invoice without invoice.paid", `SELECT id FROM invoices i WHERE status = 'paid' AND NOT EXISTS (SELECT 1 FROM events e WHERE e.invoice_id = i.id AND e.type = 'invoice.paid')`},
		{"succeeded attempt without payment.succeeded", `SELECT id FROM payment_attempts a WHERE status = 'succeeded' AND NOT EXISTS (SELECT 1 FROM events e WHERE e.attempt_id = a.id AND e.type = 'payment.succeeded')`},
		{"declined attempt without payment.failed", `SELECT id FROM payment_attempts a WHERE status = 'declined' AND NOT EXISTS (SELECT 1 FROM events e WHERE e.attempt_id = a.id AND e.type = 'payment.failed')`},
		{"uncollectible invoice without invoice.uncollectible", `SELECT id FROM invoices i WHERE status = 'uncollectible' AND NOT EXISTS (SELECT 1 FROM events e WHERE e.invoice_id = i.id AND e.type = 'invoice.uncollectible')`},
		{"void invoice without invoice.voided", `SELECT id FROM invoices i WHERE status = 'void' AND NOT EXISTS (SELECT 1 FROM events e WHERE e.invoice_id = i.id AND e.type = 'invoice.voided')`},
		{"canceled subscription without subscription.canceled", `SELECT id FROM subscriptions s WHERE status = 'canceled' AND NOT EXISTS (SELECT 1 FROM events e WHERE e.subscription_id = s.id AND e.type = 'subscription.canceled')`},
		{"unpaid subscription without subscription.unpaid", `SELECT id FROM subscriptions s WHERE status = 'unpaid' AND NOT EXISTS (SELECT 1 FROM events e WHERE e.subscription_id = s.id AND e.type = 'subscription.unpaid')`},
		{"delinquent subscription without subscription.past_due", `SELECT id FROM subscriptions s WHERE status IN ('past_due', 'suspended') AND NOT EXISTS (SELECT 1 FROM events e WHERE e.subscription_id = s.id AND e.type = 'subscription.past_due')`},
		{"suspended subscription without subscription.suspended", `SELECT id FROM subscriptions s WHERE status = 'suspended' AND NOT EXISTS (SELECT 1 FROM events e WHERE e.subscription_id = s.id AND e.type = 'subscription.suspended')`},
		{"audit row without a reason", `SELECT id::text FROM audit_log WHERE reason = ''`},
	} {
		for _, id := range q(c.sql) {
			v6 = append(v6, c.what+": "+id)
		}
	}
	add("the outbox and audit log are complete", v6)

	rep.Invoices = counts(q(`SELECT kind || '/' || status FROM invoices`))
	rep.Statuses = counts(q(`SELECT status FROM subscriptions`))
}

func counts(xs []string) map[string]int {
	m := map[string]int{}
	for _, x := range xs {
		m[x]++
	}
	return m
}

// Print writes the one-screen report.
func (r *Report) Print(w interface{ Write([]byte) (int, error) }) {
	p := func(f string, a ...any) { fmt.Fprintf(w, f+"\n", a...) }
	p("chaos run: seed %d, %s, logs in %s", r.Seed, r.Duration.Round(100_000_000), r.LogDir)
	var kills []string
	total := 0
	for name, n := range r.Kills {
		kills = append(kills, fmt.Sprintf("%s=%d", name, n))
		total += n
	}
	p("kills: %d (%s)", total, strings.Join(kills, ", "))
	var faults []string
	for k, n := range r.Faults {
		faults = append(faults, fmt.Sprintf("%s x%d", k, n))
	}
	p("fault phases: %s", strings.Join(faults, "; "))
	p("subscriptions: %d %v", r.Subs, r.Statuses)
	p("invoices: %v", r.Invoices)
	p("charges at the gateway: %d", r.Charges)
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		p("  [%s] %s %s", mark, c.Name, c.Note)
	}
	for _, v := range r.Violations {
		if !strings.HasPrefix(v, "liveness") {
			p("  - %s", v)
		}
	}
	for _, v := range r.Violations {
		if strings.HasPrefix(v, "liveness") {
			p("  [FAIL] %s", v)
		}
	}
	if len(r.Violations) == 0 {
		p("all invariants hold")
	} else {
		p("VIOLATIONS: replay with: go run ./cmd/chaos -seed %d", r.Seed)
	}
}

// Failed reports whether any invariant broke.
func (r *Report) Failed() bool { return len(r.Violations) > 0 }
