package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/keyring"
)

// The operator's commands act on a running billingd's database through the same billing methods as the
// support API, and are audited as the operator.
func TestSupportCommandsActAndAreAuditedAsTheOperator(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	cus := env.Customer(pgsim.BehaviorOK)
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub := res.JSON(t)
	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+cus, pgsim.BehaviorInsufficient))
	renewal, err := time.Parse(time.RFC3339Nano, sub["next_renewal_at"].(string))
	require.NoError(t, err)
	res = env.Do("POST", "/v1/test-clock/advance", testenv.AdminToken, map[string]any{"to": renewal})
	require.Equal(t, 200, res.Status, string(res.Body))
	res = env.Do("GET", "/v1/invoices?status=open&subscription_id="+sub["id"].(string), testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status)
	inv := res.JSON(t)["data"].([]any)[0].(map[string]any)["id"].(string)

	vars := map[string]string{
		"DATABASE_URL":            env.DBURL,
		"BILLING_ENCRYPTION_KEYS": "1:" + keyring.TestKey, // testenv's key
		"BILLING_MODE":            "dev",
		"BILLING_TEST_CLOCK":      "1",
		"BILLING_SIM_URL":         env.App.SimURL,
	}
	ctx := context.Background()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runSupport(ctx, cli{getenv: func(k string) string { return vars[k] }, out: &out}, args)
		return out.String(), err
	}

	out, err := run("delinquent")
	require.NoError(t, err)
	require.Contains(t, out, sub["id"])
	require.Contains(t, out, "past_due")
	require.Contains(t, out, "9900 KRW")
	require.Contains(t, out, "REJECT_CARD_PAYMENT (soft)")
	out, err = run("delinquent", "--json", "--state", "suspended")
	require.NoError(t, err)
	require.JSONEq(t, `{"data": [], "next_cursor": null}`, out)

	_, err = run("retry", inv)
	require.True(t, apperr.IsKind(err, apperr.KindValidation), "a reason is required: %v", err)
	_, err = run("retry", "--reason", "x")
	require.ErrorContains(t, err, "needs an invoice id")

	out, err = run("retry", inv, "--reason", "operator retry")
	require.NoError(t, err)
	var retried struct {
		Charge struct {
			Outcome string `json:"outcome"`
		} `json:"charge"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &retried))
	require.Equal(t, "declined", retried.Charge.Outcome)

	out, err = run("write-off", "--reason", "gave up", inv) // flags may come first
	require.NoError(t, err)
	require.Contains(t, out, `"status": "uncollectible"`)

	out, err = run("mark-paid", inv, "--reason", "paid at the counter", "--reference", "RCPT-7", "--amount", "9900")
	require.NoError(t, err)
	require.Contains(t, out, `"status": "paid"`)

	_, err = run("write-off", inv, "--reason", "again")
	require.True(t, apperr.IsKind(err, apperr.KindConflict), "a paid invoice cannot be written off: %v", err)

	res = env.Do("GET", "/v1/support/audit?target_id="+inv, testenv.SupportToken, nil)
	require.Equal(t, 200, res.Status)
	var audit struct {
		Data []struct {
			Actor, Role, Action, Origin, Reason string
			RequestID                           string `json:"request_id"`
		} `json:"data"`
	}
	res.Decode(t, &audit)
	require.Len(t, audit.Data, 3)
	for i, action := range []string{"retry", "write-off", "mark-paid"} {
		a := audit.Data[i]
		require.Equal(t, action, a.Action)
		require.Regexp(t, `^billingctl:.+`, a.Actor)
		require.Equal(t, "admin", a.Role)
		require.Equal(t, "cli", a.Origin)
		require.Regexp(t, `^cli_[0-9a-f]{16}$`, a.RequestID)
	}
	require.Equal(t, "paid at the counter", audit.Data[2].Reason)
	require.Equal(t, "active", env.Subscription(sub["id"].(string))["status"])
	env.RequireBalanced()
}
