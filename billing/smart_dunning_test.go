package billing_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// envAt is a billingd whose test clock starts at a chosen instant (these tests are about the calendar).
func envAt(t *testing.T, start time.Time) *testenv.Env {
	return testenv.New(t, testenv.Options{Env: map[string]string{"BILLING_TEST_CLOCK_START": start.UTC().Format(time.RFC3339)}})
}

// A renewal declined at 02:00 KST is retried at the policy's hour (10:00 KST), not 24 hours later at 02:00.
func TestDeclineAt2AMKSTIsRetriedAt10KST(t *testing.T) {
	t.Parallel()
	// Tuesday 2 March 2027, 02:00 KST; a weekly plan renews on Tuesday the 9th at 02:00 KST.
	env := envAt(t, time.Date(2027, 3, 2, 2, 0, 0, 0, kst))
	plan := env.CreatePlan("9900", "KRW", "week", 1)
	d := subscribeFor(t, env, plan, pgsim.BehaviorInsufficient)
	require.Equal(t, "2027-03-09 02:00", d.failedAt.In(kst).Format("2006-01-02 15:04"))
	advanceTo(t, env, d.failedAt.Add(2*day))
	d = d.renewal(t, env)
	times, statuses := attemptTimes(t, env, d.invoice)
	require.Equal(t, []string{"declined", "declined"}, statuses)
	requireKSTRetries(t, d.failedAt, times, "2027-03-10")
}

// A daily limit waits for the next KST day: declined at 02:00 KST on Wednesday (still Tuesday in UTC),
// retried on Thursday at 10:00 KST, not on Wednesday.
func TestDailyLimitDeclineWaitsForTheNextKSTDay(t *testing.T) {
	t.Parallel()
	env := envAt(t, time.Date(2027, 3, 3, 2, 0, 0, 0, kst))
	plan := env.CreatePlan("9900", "KRW", "week", 1)
	d := subscribeFor(t, env, plan, pgsim.BehaviorLimit)
	require.Equal(t, "2027-03-09", d.failedAt.UTC().Format(time.DateOnly), "the decline is on Tuesday in UTC")
	advanceTo(t, env, d.failedAt.Add(30*time.Hour))
	d = d.renewal(t, env)
	_, statuses := attemptTimes(t, env, d.invoice)
	require.Equal(t, []string{"declined"}, statuses, "no retry on Wednesday, KST")
	advanceTo(t, env, d.failedAt.Add(2*day))
	times, statuses := attemptTimes(t, env, d.invoice)
	require.Equal(t, []string{"declined", "declined"}, statuses)
	requireKSTRetries(t, d.failedAt, times, "2027-03-11")
	require.Equal(t, "EXCEED_MAX_DAILY_PAYMENT_COUNT", invoice(t, env, d.invoice)["attempts"].([]any)[0].(map[string]any)["decline_code"])
}

// backupSetup is a customer paying a weekly plan with a working default card and a backup card, both
// then switched to the given behaviors at the gateway.
type backupSetup struct {
	delinquency
	defaultKey, backupKey string
}

func withBackup(t *testing.T, env *testenv.Env, plan, defaultBehavior, backupBehavior string) backupSetup {
	t.Helper()
	d := subscribeFor(t, env, plan, pgsim.BehaviorOK)
	keys := env.Do("GET", "/v1/customers/"+d.customer+"/billing-keys", testenv.ServiceToken, nil).JSON(t)["data"].([]any)
	require.Len(t, keys, 1)
	b := backupSetup{delinquency: d, defaultKey: keys[0].(map[string]any)["id"].(string)}
	auth := "ok-backup-" + d.customer
	res := env.Do("POST", "/v1/customers/"+d.customer+"/billing-keys", testenv.ServiceToken,
		map[string]any{"gateway": "sim", "auth_key": auth, "customer_key": "ck-" + d.customer})
	require.Equal(t, 201, res.Status, string(res.Body))
	b.backupKey = res.JSON(t)["id"].(string)
	require.Equal(t, false, res.JSON(t)["is_default"], "a second card is not the default")
	res = env.Do("POST", "/v1/customers/"+d.customer+"/billing-keys/"+b.backupKey+"/backup", testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, true, res.JSON(t)["is_backup"])

	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+d.customer, defaultBehavior))
	for _, k := range env.Sim().BillingKeys() {
		if k.AuthKey == auth {
			require.NoError(t, env.Sim().SetBehavior(k.BillingKey, backupBehavior))
		}
	}
	return b
}

// attemptsByKey lists an invoice's attempts as (billing key, status, backup), by sequence.
func attemptsByKey(t *testing.T, env *testenv.Env, invoiceID string) (keys []string, statuses []string, backups int) {
	t.Helper()
	rows, err := env.App.Pool.Query(context.Background(), `SELECT billing_key_id, status, backup FROM payment_attempts WHERE invoice_id = $1 ORDER BY seq`, invoiceID)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var k, st string
		var b bool
		require.NoError(t, rows.Scan(&k, &st, &b))
		keys, statuses = append(keys, k), append(statuses, st)
		if b {
			backups++
		}
	}
	require.NoError(t, rows.Err())
	return keys, statuses, backups
}

// After a hard decline on the default card the backup is charged once, outside the customer's night, and
// an event says which card paid.
func TestBackupCardPaysAfterAHardDecline(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "week", 1)
	b := withBackup(t, env, plan, pgsim.BehaviorStolen, pgsim.BehaviorOK)
	advanceTo(t, env, b.failedAt.Add(12*time.Hour))
	b.delinquency = b.renewal(t, env)

	keys, statuses, backups := attemptsByKey(t, env, b.invoice)
	require.Equal(t, []string{"declined", "succeeded"}, statuses)
	require.Equal(t, []string{b.defaultKey, b.backupKey}, keys)
	require.Equal(t, 1, backups)
	require.Equal(t, "paid", invoice(t, env, b.invoice)["status"])
	require.Equal(t, "active", env.Subscription(b.sub)["status"])

	var paidAt time.Time
	require.NoError(t, env.App.Pool.QueryRow(context.Background(), `SELECT created_at FROM payment_attempts WHERE invoice_id = $1 AND backup`, b.invoice).Scan(&paidAt))
	if h := b.failedAt.In(kst).Hour(); h < 7 {
		require.Equal(t, 7, paidAt.In(kst).Hour(), "declined at %02d:00 KST: the backup waits for the end of the quiet hours", h)
	}
	require.Equal(t, 1, eventCount(env, b.sub, "payment.backup_card_charged"))
	var card string
	require.NoError(t, env.App.Pool.QueryRow(context.Background(), `SELECT data->'card'->>'masked_number' FROM events WHERE type = 'payment.backup_card_charged' AND invoice_id = $1`, b.invoice).Scan(&card))
	require.NotEmpty(t, card)

	// What the receipt names (billing.InvoicePayment): the backup card paid, after the default's decline.
	ctx := context.Background()
	paid, ok, err := env.App.Billing.InvoicePayment(ctx, b.invoice)
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, paid.Backup)
	require.Equal(t, b.backupKey, paid.BillingKeyID)
	require.Equal(t, card, paid.Card.MaskedNumber)
	require.NotNil(t, paid.Declined, "the default card's decline is named")
	require.Equal(t, "hard", paid.Declined.Class)
	var defaultCard string
	require.NoError(t, env.App.Pool.QueryRow(ctx, `SELECT masked_number FROM billing_keys WHERE id = $1`, b.defaultKey).Scan(&defaultCard))
	require.Equal(t, defaultCard, paid.Declined.Card.MaskedNumber)
	first := subInvoices(t, env, b.sub)[0]["id"].(string)
	paid, ok, err = env.App.Billing.InvoicePayment(ctx, first)
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, paid.Backup, "the first invoice was paid by the default card")
	require.Equal(t, b.defaultKey, paid.BillingKeyID)
	require.Nil(t, paid.Declined)

	// The stolen card is never charged again: the next renewal finds no chargeable default card and goes
	// to the backup, once.
	advanceTo(t, env, env.RenewalAt(b.sub).Add(12*time.Hour))
	invs := subInvoices(t, env, b.sub)
	keys, statuses, backups = attemptsByKey(t, env, invs[len(invs)-1]["id"].(string))
	require.Equal(t, []string{"succeeded"}, statuses)
	require.Equal(t, []string{b.backupKey}, keys)
	require.Equal(t, 1, backups)
	paid, ok, err = env.App.Billing.InvoicePayment(ctx, invs[len(invs)-1]["id"].(string))
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, paid.Backup)
	require.Nil(t, paid.Declined, "no default card was declined on this invoice: there was none to charge")
	env.RequireBalanced()
}

// A soft-declining default card walks its whole ladder first; only after the last retry does the backup
// get its one charge, and when that fails too the final action follows.
func TestBackupCardOnlyAfterTheLastSoftRetry(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	b := withBackup(t, env, plan, pgsim.BehaviorInsufficient, pgsim.BehaviorInsufficient)
	advanceTo(t, env, b.failedAt)
	b.delinquency = b.renewal(t, env)

	advanceTo(t, env, b.failedAt.Add(10*day))
	keys, _, backups := attemptsByKey(t, env, b.invoice)
	require.Zero(t, backups, "retries are left on the default card: the backup is not touched")
	for _, k := range keys {
		require.Equal(t, b.defaultKey, k)
	}

	advanceTo(t, env, b.failedAt.Add(40*day))
	keys, statuses, backups := attemptsByKey(t, env, b.invoice)
	require.Equal(t, []string{"declined", "declined", "declined", "declined", "declined", "declined"}, statuses)
	require.Equal(t, b.backupKey, keys[len(keys)-1], "the backup's charge is the last one")
	require.Equal(t, 1, backups)
	require.Equal(t, "canceled", env.Subscription(b.sub)["status"], "the backup declined too: the final action")
	require.Equal(t, "uncollectible", invoice(t, env, b.invoice)["status"])
	charges := 0
	for _, c := range env.Sim().Charges() {
		if c.OrderID != "" && len(c.OrderID) > len(b.invoice) && c.OrderID[:len(b.invoice)] == b.invoice {
			charges++
		}
	}
	require.Zero(t, charges, "nothing was collected at the gateway for the invoice")
	env.RequireBalanced()
}

// A hard-declined default and a declining backup: one backup charge, then only a new card heals.
func TestBackupCardIsChargedOncePerInvoice(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	b := withBackup(t, env, plan, pgsim.BehaviorStolen, pgsim.BehaviorInsufficient)
	advanceTo(t, env, b.failedAt.Add(9*day))
	b.delinquency = b.renewal(t, env)
	_, statuses, backups := attemptsByKey(t, env, b.invoice)
	require.Equal(t, []string{"declined", "declined"}, statuses)
	require.Equal(t, 1, backups)
	require.Equal(t, "suspended", env.Subscription(b.sub)["status"])

	// Support's retry now finds no card the policy may charge: the backup had its one try.
	res := env.Do("POST", "/v1/support/invoices/"+b.invoice+"/retry", testenv.SupportToken, map[string]any{"reason": "customer called"})
	require.Equal(t, 200, res.Status, string(res.Body))
	_, _, backups = attemptsByKey(t, env, b.invoice)
	require.Equal(t, 1, backups)

	// The database refuses a second backup attempt for the invoice whatever the code does.
	_, err := env.App.Pool.Exec(context.Background(), `UPDATE payment_attempts SET backup = true WHERE invoice_id = $1 AND NOT backup`, b.invoice)
	require.ErrorContains(t, err, "payment_attempts_one_backup")

	// A new card heals at once.
	env.AddKey(b.customer, pgsim.BehaviorOK)
	advanceTo(t, env, clockNow(t, env).Add(time.Minute))
	require.Equal(t, "paid", invoice(t, env, b.invoice)["status"])
	require.Equal(t, "active", env.Subscription(b.sub)["status"])
	env.RequireBalanced()
}

// A customer's own time zone moves the retry hour: 10:00 in Los Angeles, not in Seoul; an unknown zone is
// refused.
func TestRetryHourFollowsTheCustomersTimeZone(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	res := env.Do("POST", "/v1/customers", testenv.ServiceToken, map[string]any{"external_id": "tz-bad", "email": "tz@example.com",
		"name": "Somewhere", "time_zone": "Mars/Olympus"})
	require.Equal(t, 422, res.Status, string(res.Body))
	require.Contains(t, string(res.Body), "time_zone")

	res = env.Do("POST", "/v1/customers", testenv.ServiceToken, map[string]any{"external_id": "tz-la", "email": "la@example.com",
		"name": "Los Angeles", "time_zone": "America/Los_Angeles"})
	require.Equal(t, 201, res.Status, string(res.Body))
	require.Equal(t, "America/Los_Angeles", res.JSON(t)["time_zone"])
	cus := res.JSON(t)["id"].(string)
	env.AddKey(cus, pgsim.BehaviorOK)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	sub := env.Subscribe(cus, plan)
	require.Equal(t, 201, sub.Status, string(sub.Body))
	subID := sub.JSON(t)["id"].(string)
	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+cus, pgsim.BehaviorInsufficient))
	renewal := env.RenewalAt(subID)
	advanceTo(t, env, renewal.Add(3*day))
	invs := subInvoices(t, env, subID)
	times, _ := attemptTimes(t, env, invs[1]["id"].(string))
	require.GreaterOrEqual(t, len(times), 2)
	la, err := time.LoadLocation("America/Los_Angeles")
	require.NoError(t, err)
	require.Equal(t, 10, times[1].In(la).Hour(), "the first retry at 10:00 Los Angeles time: %s", times[1].In(la))
}
