package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/internal/keyring"
)

// billingctl reconcile runs the same reconciliation as the daily job, on a window the operator picks,
// against a running billingd's database and simulator.
func TestReconcileCommand(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	res := env.Subscribe(env.Customer(pgsim.BehaviorOK), plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	now := env.App.Clock.Now()
	_, err := env.Sim().Plant("planted-cli-1", pgsim.Plant{Amount: decimal.NewFromInt(1000), ApprovedAt: now})
	require.NoError(t, err)

	vars := map[string]string{
		"DATABASE_URL":            env.DBURL,
		"BILLING_ENCRYPTION_KEYS": "1:" + keyring.TestKey, // testenv's key
		"BILLING_MODE":            "dev",
		"BILLING_TEST_CLOCK":      "1",
		"BILLING_SIM_URL":         env.App.SimURL,
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runReconcile(context.Background(), cli{getenv: func(k string) string { return vars[k] }, out: &out}, args)
		return out.String(), err
	}
	from, to := now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)

	out, err := run("--from", from, "--to", to, "--json")
	require.NoError(t, err)
	var runs []struct {
		Gateway     string `json:"gateway"`
		Status      string `json:"status"`
		Matched     int    `json:"matched"`
		NewFindings int    `json:"new_findings"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &runs), out)
	require.Len(t, runs, 1)
	require.Equal(t, "sim", runs[0].Gateway)
	require.Equal(t, "completed", runs[0].Status)
	require.Equal(t, 1, runs[0].Matched)
	require.Equal(t, 1, runs[0].NewFindings)
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM reconciliation_findings WHERE order_id = 'planted-cli-1' AND kind = 'missing_here'`))

	out, err = run("--from", from, "--to", to, "--gateway", "sim")
	require.NoError(t, err)
	require.Contains(t, out, "MATCHED")
	require.Contains(t, out, "completed")

	for _, bad := range [][]string{{"--from", from}, {"--from", "yesterday", "--to", to}, {"--from", to, "--to", from}, {"extra"}} {
		_, err := run(bad...)
		require.Error(t, err, "%v", bad)
	}
	_, err = run("--from", "2026-01-01", "--to", "2026-01-02", "--gateway", "toss")
	require.ErrorContains(t, err, "not enabled")
}
