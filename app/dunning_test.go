package app_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/dunning"
	"github.com/dunningworks/billing/internal/config"
)

// A bad policy file refuses the start before anything is connected, naming the variable, the file and
// every problem in it.
func TestInvalidDunningPolicyRefusesTheStart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("max_retries: -1\nfinal_action: forgive\nretry_bsae: 1d\n"), 0o600))
	cfg, err := config.Load(func(k string) string {
		return map[string]string{
			// Nothing listens here: reaching the database would fail differently.
			"DATABASE_URL":           "postgres://nobody@127.0.0.1:1/none?connect_timeout=1",
			"BILLING_DUNNING_POLICY": path,
			"BILLING_MODE":           "dev",
		}[k]
	})
	require.NoError(t, err)
	_, err = app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.ErrorIs(t, err, dunning.ErrInvalidPolicy)
	for _, want := range []string{"BILLING_DUNNING_POLICY", path, "max_retries", "final_action", `unknown key "retry_bsae"`} {
		require.ErrorContains(t, err, want)
	}
}

func TestDunningPoliciesDefaultsWithoutAFile(t *testing.T) {
	t.Parallel()
	ps, err := app.DunningPolicies(config.Config{})
	require.NoError(t, err)
	require.Equal(t, dunning.DefaultPolicy(), ps.Default())

	path := filepath.Join(t.TempDir(), "p.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"final_action": "unpaid"}`), 0o600))
	ps, err = app.DunningPolicies(config.Config{DunningPolicy: path})
	require.NoError(t, err)
	require.Equal(t, dunning.FinalUnpaid, ps.Default().FinalAction)
}
