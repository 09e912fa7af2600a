package billing_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// attemptSends is what the database says about an attempt's sends.
type attemptSends struct {
	status string
	count  int
	sentAt *time.Time
}

func readSends(t *testing.T, env *testenv.Env, attemptID string) attemptSends {
	t.Helper()
	var a attemptSends
	require.NoError(t, env.App.Pool.QueryRow(context.Background(),
		`SELECT status, send_count, sent_at FROM payment_attempts WHERE id = $1`, attemptID).Scan(&a.status, &a.count, &a.sentAt))
	return a
}

// The send is recorded, and committed, before the gateway is called: while the gateway's answer is still
// in the air, another connection already sees send_count = 1 on the pending attempt.
func TestAttemptSendIsCommittedBeforeTheGatewayAnswers(t *testing.T) {
	t.Parallel()
	var env *testenv.Env
	var mu sync.Mutex
	seen := map[string]attemptSends{}
	env = testenv.New(t, testenv.Options{App: app.Options{Hooks: billing.Hooks{
		AfterCharge: func(id string, _ gateway.Outcome) error {
			a := readSends(t, env, id)
			mu.Lock()
			seen[id] = a
			mu.Unlock()
			return nil
		},
	}}})
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer("ok")
	start := env.Now()
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	subID := res.JSON(t)["id"].(string)

	inv := invoicesOf(t, env, subID)[0]
	atts := inv["attempts"].([]any)
	require.Len(t, atts, 1)
	att := atts[0].(map[string]any)
	mu.Lock()
	during := seen[att["id"].(string)]
	mu.Unlock()
	require.Equal(t, "pending", during.status, "the hook runs before the outcome is recorded")
	require.Equal(t, 1, during.count, "the send was committed before the gateway answered")
	require.NotNil(t, during.sentAt)
	require.True(t, during.sentAt.Equal(start), "sent_at is domain time: %s, want %s", during.sentAt, start)

	require.Equal(t, "succeeded", att["status"])
	require.EqualValues(t, 1, att["send_count"])
	sentAt, err := time.Parse(time.RFC3339Nano, att["sent_at"].(string))
	require.NoError(t, err)
	require.True(t, sentAt.Equal(start))
}

// A process that dies between committing the attempt and calling the gateway leaves a pending attempt with
// send_count 0: the operator can tell it never reached the gateway. Its resend is counted; so is every
// resend after a 5xx.
func TestAttemptSendCountTellsWhetherThePendingAttemptReachedTheGateway(t *testing.T) {
	t.Parallel()
	sim := pgsim.New(pgsim.Options{Seed: 1, SecretKey: "test_sk_sim"})
	simURL := serve(t, sim)
	first := testenv.New(t, testenv.Options{SimURL: simURL, App: app.Options{Hooks: billing.Hooks{
		BeforeCharge: func(string) error { return errCrash },
	}}})
	plan := first.CreatePlan("9900", "KRW", "month", 1)
	cus := first.Customer("ok")
	res := first.Subscribe(cus, plan)
	require.GreaterOrEqual(t, res.Status, 500, "the failpoint stops the request as a crash would: %s", res.Body)
	var attID string
	require.NoError(t, first.App.Pool.QueryRow(context.Background(),
		`SELECT id FROM payment_attempts WHERE customer_id = $1`, cus).Scan(&attID))
	before := readSends(t, first, attID)
	require.Equal(t, "pending", before.status)
	require.Equal(t, 0, before.count, "never sent")
	require.Nil(t, before.sentAt)
	require.Empty(t, sim.Charges())
	first.Stop()

	// The next process resolves the attempt: not found at the gateway, so the same order is resent. The
	// resend meets a 5xx before the gateway commits, stays unknown, and the next lookup resends it again.
	second := testenv.New(t, testenv.Options{DBURL: first.DBURL, SimURL: simURL})
	sim.SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{Error5xxBeforeCommit: &pgsim.Rule{Count: 1}}})
	second.Advance("1m")
	mid := readSends(t, second, attID)
	require.Equal(t, "unknown", mid.status)
	require.Equal(t, 1, mid.count)
	firstSend := *mid.sentAt
	second.Advance("5m")
	after := readSends(t, second, attID)
	require.Equal(t, "succeeded", after.status)
	require.Equal(t, 2, after.count)
	require.True(t, after.sentAt.After(firstSend), "sent_at is the last send")
	require.Len(t, sim.Charges(), 1)
}
