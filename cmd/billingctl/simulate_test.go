package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/internal/keyring"
)

// billingctl dunning simulate reads the recorded history and prints the record, the current policy and
// the candidate side by side, with the model's assumptions.
func TestDunningSimulatePrintsTheComparison(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	// One card heals after its second decline (flaky-2): recovered by the current policy on its second
	// retry; one never heals (insufficient): canceled after the whole ladder.
	for _, behavior := range []string{"flaky-2", pgsim.BehaviorInsufficient} {
		cus := env.Customer(pgsim.BehaviorOK)
		res := env.Subscribe(cus, plan)
		require.Equal(t, 201, res.Status, string(res.Body))
		require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+cus, behavior))
	}
	env.AdvanceTo(env.Now().AddDate(0, 2, 0))

	policy := filepath.Join(t.TempDir(), "candidate.yaml")
	require.NoError(t, os.WriteFile(policy, []byte("max_retries: 1\n"), 0o600))
	vars := map[string]string{
		"DATABASE_URL":            env.DBURL,
		"BILLING_ENCRYPTION_KEYS": "1:" + keyring.TestKey, // testenv's key
		"BILLING_MODE":            "dev",
		"BILLING_TEST_CLOCK":      "1",
		"BILLING_SIM_URL":         env.App.SimURL,
	}
	var out bytes.Buffer
	err := runSimulate(context.Background(), cli{getenv: func(k string) string { return vars[k] }, out: &out},
		[]string{"simulate", "--policy", policy, "--since", "90d"})
	require.NoError(t, err, out.String())
	s := out.String()
	require.Contains(t, s, "Dunning episodes that first failed")
	require.Regexp(t, `first failed from .* to .*: 2\n`, s)
	// Recorded and current: one recovered (9900 KRW), 3 + 5 charges, one customer canceled. The
	// candidate's single retry cannot reach the card that healed after two declines.
	require.Regexp(t, `recovered revenue KRW\s+9900\s+9900\s+0`, s)
	require.Regexp(t, `recovery rate\s+50.0 %\s+50.0 %\s+0.0 %`, s)
	require.Regexp(t, `charges sent\s+8\s+8\s+4`, s)
	require.Regexp(t, `customers canceled\s+1\s+1\s+2`, s)
	require.Contains(t, s, "healed halfway between its last decline")

	err = runSimulate(context.Background(), cli{getenv: func(k string) string { return vars[k] }, out: &out}, []string{"simulate"})
	require.ErrorContains(t, err, "--policy is required")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("max_retrys: 1\n"), 0o600))
	err = runSimulate(context.Background(), cli{getenv: func(k string) string { return vars[k] }, out: &out}, []string{"simulate", "--policy", bad})
	require.ErrorContains(t, err, `unknown key "max_retrys"`)
}
