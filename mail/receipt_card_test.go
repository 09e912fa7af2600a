package mail_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/devtools/mailcatcher"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/mail"
)

// receipt is a receipt email's text and HTML parts.
type receipt struct{ text, html string }

// receipts are the receipt emails that arrived for a recipient, by the invoice they are for (their
// event's), one per Message-ID (a resend after a lease is the same email, docs/customer-emails.md). Emails
// are sent on the wall clock, so their order of arrival says nothing.
func receipts(t *testing.T, env *testenv.Env, c *mailcatcher.Catcher, to string) map[string]receipt {
	t.Helper()
	out := map[string]receipt{}
	seen := map[string]bool{}
	for _, m := range c.Messages() {
		h, err := m.Header()
		require.NoError(t, err)
		if h.Get("X-Billing-Email-Kind") != string(mail.PaymentSucceeded) || m.To[0] != to || seen[m.MessageID] {
			continue
		}
		seen[m.MessageID] = true
		var invoiceID string
		require.NoError(t, env.App.Pool.QueryRow(t.Context(), `SELECT invoice_id FROM events WHERE id = $1`, h.Get("X-Billing-Event-Id")).Scan(&invoiceID))
		require.NotContains(t, out, invoiceID, "two receipts for invoice %s", invoiceID)
		text, html := mailcatcher.Parts(m.Raw)
		out[invoiceID] = receipt{text: strings.ReplaceAll(text, "\r\n", "\n"), html: html}
	}
	return out
}

// cardLabel is how emails name a customer's billing key: its brand and last four, as the API reports
// the card.
func cardLabel(t *testing.T, env *testenv.Env, customerID, keyID string) string {
	t.Helper()
	res := env.Do("GET", "/v1/customers/"+customerID+"/billing-keys", testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	for _, k := range res.JSON(t)["data"].([]any) {
		k := k.(map[string]any)
		if k["id"] == keyID {
			c := k["card"].(map[string]any)
			label := gateway.Card{Brand: c["brand"].(string), MaskedNumber: c["masked_number"].(string)}.Label()
			require.Contains(t, label, "•••• ", "the card has a number to show")
			return label
		}
	}
	t.Fatalf("customer %s has no key %s", customerID, keyID)
	return ""
}

// The receipt names the card charged. A renewal paid by the default card names that card; a renewal the
// backup card recovered after the default card's hard decline gets one receipt, not a second email for
// payment.backup_card_charged, which names the backup card, says the default card was declined, and
// links to the customer's page to change card.
func TestReceiptEmailNamesTheCardCharged(t *testing.T) {
	t.Parallel()
	// Leases that outlast a receipt PDF on a loaded machine.
	b := setupMail(t, testenv.Options{App: app.Options{Mail: mail.Tuning{Interval: 20 * time.Millisecond, BackoffBase: 50 * time.Millisecond,
		BackoffMax: 100 * time.Millisecond, Timeout: 10 * time.Second, Lease: 60 * time.Second, MaxAttempts: 5}}})
	env := b.env
	plan := env.CreatePlan("9900", "KRW", "week", 1)

	// A Korean customer whose default card keeps working.
	normal := env.CreateCustomer()
	normalKey := env.AddKey(normal, pgsim.BehaviorOK)
	res := env.Subscribe(normal, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	normalSub := res.JSON(t)["id"].(string)

	// An English customer with a backup card; the default card is then stolen.
	ext := "backup-" + time.Now().Format("150405.000000")
	res = env.Do("POST", "/v1/customers", testenv.ServiceToken, map[string]any{"external_id": ext, "email": ext + "@example.com", "name": "Jane Doe", "locale": "en"})
	require.Equal(t, 201, res.Status, string(res.Body))
	cus := res.JSON(t)["id"].(string)
	defaultKey := env.AddKey(cus, pgsim.BehaviorOK)
	res = env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub := res.JSON(t)["id"].(string)
	auth := "ok-backup-" + cus
	res = env.Do("POST", "/v1/customers/"+cus+"/billing-keys", testenv.ServiceToken, map[string]any{"gateway": "sim", "auth_key": auth, "customer_key": "ck-" + cus})
	require.Equal(t, 201, res.Status, string(res.Body))
	backupKey := res.JSON(t)["id"].(string)
	res = env.Do("POST", "/v1/customers/"+cus+"/billing-keys/"+backupKey+"/backup", testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+cus, pgsim.BehaviorStolen))
	for _, k := range env.Sim().BillingKeys() {
		if k.AuthKey == auth {
			require.NoError(t, env.Sim().SetBehavior(k.BillingKey, pgsim.BehaviorOK))
		}
	}

	// Both renew; the backup's charge waits for the end of the customer's quiet hours.
	renewal := env.RenewalAt(sub)
	if r := env.RenewalAt(normalSub); r.After(renewal) {
		renewal = r
	}
	// At the renewal the default card is declined and the invoice goes to the backup card at the end of
	// the quiet hours: the payment-failed email says so (which card, when), not "add a new card".
	env.AdvanceTo(renewal)
	b.waitSettled(t)
	var failedInvoice string
	require.NoError(t, env.App.Pool.QueryRow(t.Context(), `SELECT id FROM invoices WHERE subscription_id = $1 AND status = 'open' AND backup_due`, sub).Scan(&failedInvoice))
	next, ok, err := env.App.Billing.UpcomingBackup(t.Context(), failedInvoice)
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, next.At.After(env.Now()), "the backup waits for the quiet hours' end")
	backupLabel := cardLabel(t, env, cus, backupKey)
	require.Equal(t, backupLabel, next.Card.Label())
	var failedText string
	for _, m := range b.catcher.Messages() {
		h, err := m.Header()
		require.NoError(t, err)
		if h.Get("X-Billing-Email-Kind") == string(mail.PaymentFailedHard) && m.To[0] == ext+"@example.com" {
			failedText, _ = mailcatcher.Parts(m.Raw)
		}
	}
	require.Contains(t, failedText, "We will not try that card again. We will charge your backup card, "+backupLabel+", on ", failedText)
	require.NotContains(t, failedText, "please add a new card", failedText)

	env.AdvanceTo(renewal.Add(12 * time.Hour))
	b.waitSettled(t)

	var renewalInvoice string
	require.NoError(t, env.App.Pool.QueryRow(t.Context(), `SELECT invoice_id FROM payment_attempts WHERE customer_id = $1 AND backup AND status = 'succeeded'`, cus).Scan(&renewalInvoice))
	require.Equal(t, "paid", env.Do("GET", "/v1/invoices/"+renewalInvoice, testenv.ServiceToken, nil).JSON(t)["status"])
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM events WHERE type = 'payment.backup_card_charged' AND invoice_id = $1`, renewalInvoice))
	require.Zero(t, env.QueryInt(`SELECT count(*) FROM mail_outbox m JOIN events e ON e.id = m.event_id WHERE e.type = 'payment.backup_card_charged'`),
		"the backup charge is told by the receipt, not by an email of its own")
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM mail_outbox WHERE invoice_id = $1 AND kind = 'payment_succeeded'`, renewalInvoice))
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM mail_outbox WHERE invoice_id = $1 AND kind = 'payment_succeeded' AND status = 'sent'`, renewalInvoice))

	defaultCard, backupCard := cardLabel(t, env, cus, defaultKey), cardLabel(t, env, cus, backupKey)
	got := receipts(t, env, b.catcher, ext+"@example.com")
	require.Len(t, got, 2, "the first payment's receipt and the recovered renewal's: one each")
	require.Contains(t, got, renewalInvoice)
	for inv, r := range got {
		if inv == renewalInvoice {
			continue
		}
		require.Contains(t, r.text, "Charged to: "+defaultCard+"\n", "the first payment's receipt:\n%s", r.text)
		require.NotContains(t, r.text, "backup", r.text)
	}
	recovered := got[renewalInvoice]
	link := "http://127.0.0.1:8080/c/test-" + cus
	for _, want := range []string{
		"Your default card, " + defaultCard + ", was declined, so we charged your backup card, " + backupCard + ".",
		"To change the card you pay with: " + link,
		"Charged to: " + backupCard + " (your backup card)",
		"Amount paid: ₩9,900",
	} {
		require.Contains(t, recovered.text, want, "the recovered renewal's receipt:\n%s", recovered.text)
	}
	require.Contains(t, recovered.html, "Your default card, <b>"+defaultCard+"</b>, was declined, so we charged your <b>backup card, "+backupCard+"</b>.", recovered.html)
	require.Contains(t, recovered.html, `<a href="`+link+`">Change the card you pay with</a>`, recovered.html)

	// The default card's renewal (paid by the batch engine): its receipt names the default card and
	// nothing of a backup.
	normalCard := cardLabel(t, env, normal, normalKey)
	var normalEmail string
	require.NoError(t, env.App.Pool.QueryRow(t.Context(), `SELECT email FROM customers WHERE id = $1`, normal).Scan(&normalEmail))
	got = receipts(t, env, b.catcher, normalEmail)
	require.Len(t, got, 2, "the first payment's receipt and the renewal's")
	require.Equal(t, 2, env.QueryInt(`SELECT count(*) FROM mail_outbox WHERE customer_id = $1 AND kind = 'payment_succeeded'`, normal))
	for _, r := range got {
		require.Contains(t, r.text, "결제 카드: "+normalCard+"\n", r.text)
		require.Contains(t, r.html, "<td>결제 카드</td><td align=\"right\">"+normalCard+"</td>", r.html)
		require.False(t, strings.Contains(r.text, "예비") || strings.Contains(r.html, "예비"), "no backup in a default card's receipt:\n%s", r.text)
	}
}
