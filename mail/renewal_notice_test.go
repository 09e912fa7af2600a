package mail_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/devtools/mailcatcher"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/mail"
)

// replica starts another billingd on b's database and b's gateway simulator that sends through b's
// catcher (a second replica, or the process that comes back after a restart).
func (b *mailBundle) replica(t *testing.T) *testenv.Env {
	t.Helper()
	return testenv.New(t, testenv.Options{DBURL: b.env.DBURL, SimURL: b.env.App.SimURL, Env: map[string]string{
		"BILLING_SMTP_URL": b.catcher.URL(), "BILLING_MAIL_FROM": "Dunning Works <billing@shop.example>"},
		App: b.app})
}

// koDate is how the Korean emails write a day (in Seoul), without the weekday that follows.
func koDate(t time.Time) string {
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		seoul = time.FixedZone("KST", 9*3600)
	}
	t = t.In(seoul)
	return fmt.Sprintf("%d년 %d월 %d일", t.Year(), int(t.Month()), t.Day())
}

func noticePlan(t *testing.T, env *testenv.Env, code string, extra map[string]any) string {
	t.Helper()
	body := map[string]any{"code": code + "-" + time.Now().Format("150405.000000"), "name": "Plan " + code, "amount": "10000",
		"currency": "KRW", "interval": "month"}
	for k, v := range extra {
		body[k] = v
	}
	res := env.Do("POST", "/v1/plans", testenv.AdminToken, body)
	require.Equal(t, 201, res.Status, string(res.Body))
	return res.JSON(t)["id"].(string)
}

// renewalMessages are the upcoming-renewal emails that arrived, per recipient, one per Message-ID: on a
// loaded machine a send can outlast the tests' short lease and be sent again with the same Message-ID
// (delivery is at least once, docs/customer-emails.md); that is one email, not a second notice.
func renewalMessages(c *mailcatcher.Catcher) map[string][]mailcatcher.Message {
	out := map[string][]mailcatcher.Message{}
	seen := map[string]bool{}
	for _, m := range c.Messages() {
		h, err := m.Header()
		if err != nil || h.Get("X-Billing-Email-Kind") != string(mail.RenewalUpcoming) || seen[m.MessageID] {
			continue
		}
		seen[m.MessageID] = true
		out[m.To[0]] = append(out[m.To[0]], m)
	}
	return out
}

// The upcoming-renewal notice is recorded once per (subscription, renewal): two replicas sweeping at
// the same instant (two sweeps each) make one event and one email, a restarted process adds nothing, and
// the next period gets its own. A plan without renewal_notice_days tells nothing before its renewals; a
// trial gets its conversion notice by default (7 days ahead), unless its plan turns it off. The email says
// the date, the amount with tax, and links to the customer's page.
func TestRenewalNoticeOncePerPeriod(t *testing.T) {
	t.Parallel()
	// Leases that outlast a receipt PDF on a loaded machine (the receipts of the first payments go too).
	b := setupMail(t, testenv.Options{App: app.Options{Mail: mail.Tuning{Interval: 20 * time.Millisecond, BackoffBase: 50 * time.Millisecond,
		BackoffMax: 100 * time.Millisecond, Timeout: 10 * time.Second, Lease: 60 * time.Second, MaxAttempts: 5}}})
	env := b.env
	res := env.Do("POST", "/v1/tax-rates", testenv.AdminToken, map[string]any{"name": "VAT on top", "percentage": "10", "inclusive": false})
	require.Equal(t, 201, res.Status, string(res.Body))
	vat := res.JSON(t)["id"].(string)

	noticed := noticePlan(t, env, "noticed", map[string]any{"renewal_notice_days": 20, "tax_rate_id": vat})
	res = env.Do("GET", "/v1/plans/"+noticed, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status)
	require.EqualValues(t, 20, res.JSON(t)["renewal_notice_days"])
	require.EqualValues(t, 7, res.JSON(t)["trial_end_notice_days"], "a trial's notice is on by default")
	silent := noticePlan(t, env, "silent", nil)
	trial := noticePlan(t, env, "trial", map[string]any{"trial_days": 14})
	trialOff := noticePlan(t, env, "trial-off", map[string]any{"trial_days": 14, "trial_end_notice_days": 0})
	res = env.Do("POST", "/v1/plans", testenv.AdminToken, map[string]any{"code": "bad-notice", "name": "x", "amount": "1", "currency": "KRW",
		"interval": "month", "renewal_notice_days": 0, "trial_end_notice_days": 91})
	require.Equal(t, 422, res.Status, string(res.Body))
	require.Contains(t, string(res.Body), "renewal_notice_days")
	require.Contains(t, string(res.Body), "trial_end_notice_days")

	subscribe := func(who, plan string) (string, string) {
		res := env.Do("POST", "/v1/customers", testenv.ServiceToken, map[string]any{"external_id": who + time.Now().Format("150405.000000"),
			"email": who + "@example.com", "name": who})
		require.Equal(t, 201, res.Status, string(res.Body))
		cus := res.JSON(t)["id"].(string)
		env.AddKey(cus, pgsim.BehaviorOK)
		res = env.Subscribe(cus, plan)
		require.Equal(t, 201, res.Status, string(res.Body))
		return cus, res.JSON(t)["id"].(string)
	}
	noticedCus, noticedSub := subscribe("noticed", noticed)
	_, _ = subscribe("silent", silent)
	_, trialSub := subscribe("trial", trial)
	_, _ = subscribe("trialoff", trialOff)
	renewal, trialEnd := env.RenewalAt(noticedSub), env.RenewalAt(trialSub)
	require.Equal(t, "trialing", env.Subscription(trialSub)["status"])

	// Both notices are due here, and neither renewal has come: the clock is moved directly, so no
	// advance's sweep records them first.
	at := renewal.Add(-20 * 24 * time.Hour)
	if t2 := trialEnd.Add(-7 * 24 * time.Hour); t2.After(at) {
		at = t2
	}
	at = at.Add(time.Hour)
	require.True(t, at.Before(trialEnd) && at.Before(renewal))
	second := b.replica(t)
	ctx := context.Background()
	_, err := env.App.TestClock.Advance(ctx, at)
	require.NoError(t, err)

	// Two replicas, two sweeps each, at once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	told := 0
	start := make(chan struct{})
	for _, e := range []*testenv.Env{env, second, env, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			n, err := e.App.Billing.SendRenewalNotices(ctx, 100)
			require.NoError(t, err)
			mu.Lock()
			told += n
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	// The noticed plan's renewal and the trial's conversion, once each (the periodic job may have taken
	// part too: it is one more sweep).
	require.LessOrEqual(t, told, 2)
	require.Equal(t, 2, env.QueryInt(`SELECT count(*) FROM renewal_notices`))
	require.Equal(t, 2, env.QueryInt(`SELECT count(*) FROM events WHERE type = 'subscription.renewal_upcoming'`))

	// A restart: the replica goes, a new process comes; its sweeps (the periodic job runs on start, and
	// this one) find nothing more to tell.
	second.Stop()
	third := b.replica(t)
	n, err := third.App.Billing.SendRenewalNotices(ctx, 100)
	require.NoError(t, err)
	require.Zero(t, n)
	settledWithin(t, b, 90*time.Second)

	msgs := renewalMessages(b.catcher)
	require.Len(t, msgs, 2, "only the noticed plan's subscriber and the trial's were told")
	require.Len(t, msgs["noticed@example.com"], 1)
	require.Len(t, msgs["trial@example.com"], 1)
	text, html := mailcatcher.Parts(msgs["noticed@example.com"][0].Raw)
	date := koDate(renewal)
	require.Contains(t, text, date)
	require.Contains(t, text, "11,000원(부가세 포함)", "the plan's 10,000 with 10% tax on top")
	require.Contains(t, text, "http://127.0.0.1:8080/c/test-"+noticedCus)
	require.Contains(t, html, "11,000원")
	require.Contains(t, msgs["noticed@example.com"][0].Subject, "갱신")
	trialText, _ := mailcatcher.Parts(msgs["trial@example.com"][0].Raw)
	require.Contains(t, trialText, "무료 체험이 "+koDate(trialEnd))
	require.Contains(t, trialText, "에 끝나고 유료 구독으로 전환됩니다")
	require.Contains(t, trialText, "10,000원")
	require.NotContains(t, trialText, "부가세", "the trial plan is tax-free")

	// Through the renewal and the trial's conversion to the next period's window: the advance records the
	// next notice at its own date, once; the converted trial's plan has no renewal notice.
	env.AdvanceTo(renewal.Add(time.Hour))
	next := env.RenewalAt(noticedSub)
	require.True(t, next.After(renewal))
	env.AdvanceTo(next.Add(-20*24*time.Hour + time.Hour))
	_, err = third.App.Billing.SendRenewalNotices(ctx, 100)
	require.NoError(t, err)
	settledWithin(t, b, 90*time.Second)
	msgs = renewalMessages(b.catcher)
	require.Len(t, msgs["noticed@example.com"], 2)
	require.Len(t, msgs["trial@example.com"], 1)
	require.Len(t, msgs, 2)
	require.Contains(t, msgs["noticed@example.com"][1].Subject, koDate(next))

	require.Equal(t, 3, env.QueryInt(`SELECT count(*) FROM events WHERE type = 'subscription.renewal_upcoming'`))
	require.Equal(t, 3, env.QueryInt(`SELECT count(*) FROM renewal_notices`))
	require.Equal(t, 3, env.QueryInt(`SELECT count(*) FROM mail_outbox WHERE kind = 'renewal_upcoming' AND status = 'sent'`))
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM renewal_notices WHERE trial`))
}

// settledWithin waits until no upcoming-renewal email is queued or sending; a stopped replica's sends in flight are taken
// up again after their lease, which on a loaded machine takes longer than waitSettled waits.
func settledWithin(t *testing.T, b *mailBundle, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for b.env.QueryInt(`SELECT count(*) FROM mail_outbox WHERE status IN ('queued', 'sending') AND kind = 'renewal_upcoming'`) != 0 {
		if time.Now().After(deadline) {
			rows, err := b.env.App.Pool.Query(context.Background(), `SELECT id, kind, status, attempts, next_attempt_at, coalesce(last_error, '') FROM mail_outbox ORDER BY id`)
			require.NoError(t, err)
			for rows.Next() {
				var id int64
				var attempts int
				var kind, status, lastErr string
				var next *time.Time
				require.NoError(t, rows.Scan(&id, &kind, &status, &attempts, &next, &lastErr))
				t.Logf("email %d %s %s attempts=%d next=%v err=%s", id, kind, status, attempts, next, lastErr)
			}
			rows.Close()
			var jobs []string
			jr, err := b.env.App.Pool.Query(context.Background(), `SELECT kind || ' ' || state || ' ' || args::text FROM river_job WHERE kind LIKE 'mail%' ORDER BY id DESC LIMIT 20`)
			require.NoError(t, err)
			for jr.Next() {
				var j string
				require.NoError(t, jr.Scan(&j))
				jobs = append(jobs, j)
			}
			jr.Close()
			t.Logf("mail jobs: %v (now %v)", jobs, time.Now().UTC())
			require.FailNow(t, "emails did not settle")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
