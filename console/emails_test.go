package console_test

import (
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/devtools/mailcatcher"
	"github.com/dunningworks/billing/mail"
)

// The account page's timeline shows each customer email with its delivery: the receipt the SMTP server
// accepted (sent, one attempt, when), and the plan-change email it refused with a 550 (failed, the code
// and the server's words), each at the time of the event that owed it.
func TestTimelineShowsSentAndFailedEmails(t *testing.T) {
	t.Parallel()
	c, err := mailcatcher.Start(mailcatcher.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	env := testenv.New(t, testenv.Options{
		Env: map[string]string{"BILLING_SMTP_URL": c.URL(), "BILLING_MAIL_FROM": "Dunning Works <billing@shop.example>"},
		// A lease that outlasts a receipt PDF on a loaded machine.
		App: app.Options{Mail: mail.Tuning{Interval: 20 * time.Millisecond, BackoffBase: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
			Timeout: 10 * time.Second, Lease: 30 * time.Second, MaxAttempts: 5}},
	})
	settled := func() {
		t.Helper()
		require.Eventually(t, func() bool {
			return env.QueryInt(`SELECT count(*) FROM mail_outbox WHERE status IN ('queued', 'sending')`) == 0
		}, 90*time.Second, 20*time.Millisecond)
	}

	a := subscribe(t, env, env.CreatePlan("9900", "KRW", "month", 1))
	settled() // the first payment's receipt: accepted
	require.Len(t, c.Messages(), 1)

	c.SetRule(func(string) *mailcatcher.Reply { return &mailcatcher.Reply{Code: 550, Message: "mailbox unavailable"} })
	res := env.Do("POST", "/v1/subscriptions/"+a.Subscription+"/change-plan", testenv.ServiceToken,
		map[string]any{"plan_id": env.CreatePlan("19900", "KRW", "month", 1), "proration": "none"})
	require.Equal(t, 200, res.Status, string(res.Body))
	settled() // the plan-change email: refused for good
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM mail_outbox WHERE kind = 'plan_changed' AND status = 'failed'`))

	v := newVisitor(t, env)
	require.Equal(t, http.StatusSeeOther, v.signIn(testenv.SupportToken).Status)
	p := v.get("/console/customers/" + a.Customer)
	require.Equal(t, http.StatusOK, p.Status)
	entries := timelineEntries(t, p.Body)

	sent := entryWith(t, entries, "Email payment_succeeded: sent")
	require.Contains(t, sent, `class="tl tl-email"`)
	require.Contains(t, sent, `class="badge mail-sent"`)
	var to string
	require.NoError(t, env.App.Pool.QueryRow(t.Context(), `SELECT email FROM customers WHERE id = $1`, a.Customer).Scan(&to))
	require.Contains(t, sent, "to "+to+" ·")
	require.Contains(t, sent, "1 attempt ·")
	require.Regexp(t, `sent at \d{4}-\d\d-\d\d \d\d:\d\d UTC`, sent)

	failed := entryWith(t, entries, "Email plan_changed: failed")
	require.Contains(t, failed, `class="badge mail-failed"`)
	require.Contains(t, failed, "1 attempt ·")
	require.Contains(t, failed, "550")
	require.Contains(t, failed, "mailbox unavailable")
	require.NotContains(t, failed, "sent at")

	// Newest first: the plan change's email above the first payment's receipt.
	require.Less(t, strings.Index(p.Body, "Email plan_changed"), strings.Index(p.Body, "Email payment_succeeded"))
}

var timelineItem = regexp.MustCompile(`(?s)<li class="tl tl-[a-z]+">.*?</li>`)

// timelineEntries are the timeline's entries as HTML, unescaped.
func timelineEntries(t *testing.T, body string) []string {
	t.Helper()
	start := strings.Index(body, `id="timeline"`)
	require.Positive(t, start, "the page has a timeline")
	var out []string
	for _, m := range timelineItem.FindAllString(body[start:], -1) {
		out = append(out, html.UnescapeString(m))
	}
	return out
}

func entryWith(t *testing.T, entries []string, s string) string {
	t.Helper()
	for _, e := range entries {
		if strings.Contains(e, s) {
			return e
		}
	}
	require.Failf(t, "no timeline entry", "none says %q in %v", s, entries)
	return ""
}
