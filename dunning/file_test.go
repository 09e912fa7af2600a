package dunning_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/dunning"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

func TestPolicyFileYAMLOverridesTheDefault(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "policy.yaml", `
# a stricter policy: three retries, 3 days apart and growing by 3
retry_base: 3d
retry_factor: 3
max_retries: 3
grace_period: 36h
dunning_window: 20d
final_action: unpaid
`)
	p, err := dunning.LoadPolicyFile(path)
	require.NoError(t, err)
	want := dunning.DefaultPolicy()
	want.RetryBase = dunning.Duration(72 * time.Hour)
	want.RetryFactor = 3
	want.MaxRetries = 3
	want.GracePeriod = dunning.Duration(36 * time.Hour)
	want.DunningWindow = dunning.Duration(20 * 24 * time.Hour)
	want.FinalAction = dunning.FinalUnpaid
	require.Equal(t, want, p, "keys left out keep the default")
}

func TestPolicyFileJSONIsAccepted(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "policy.json", `{"max_retries": 2, "jitter_percent": 0, "technical_base": "1m", "technical_max": "10m"}`)
	p, err := dunning.LoadPolicyFile(path)
	require.NoError(t, err)
	require.Equal(t, 2, p.MaxRetries)
	require.Equal(t, 0, p.JitterPercent)
	require.Equal(t, time.Minute, p.TechnicalBase.D())
	require.Equal(t, 10*time.Minute, p.TechnicalMax.D())
	require.Equal(t, dunning.DefaultPolicy().GracePeriod, p.GracePeriod)
}

func TestEmptyPolicyFileIsTheDefault(t *testing.T) {
	t.Parallel()
	p, err := dunning.LoadPolicyFile(writeFile(t, "empty.yaml", "# nothing overridden\n"))
	require.NoError(t, err)
	require.Equal(t, dunning.DefaultPolicy(), p)
}

// One run of the loader names every problem: unknown keys, wrong types and invalid values together.
func TestPolicyFileListsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "bad.yaml", `
retry_base: soon
retry_factor: 2.5
max_retries: 99
final_action: forgive
grace_period: 20d
dunning_window: 10d
retries: 3
`)
	_, err := dunning.LoadPolicyFile(path)
	require.ErrorIs(t, err, dunning.ErrInvalidPolicy)
	var pe *dunning.PolicyError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, path, pe.Source)
	msg := err.Error()
	require.Contains(t, msg, path)
	for _, want := range []string{
		`unknown key "retries"`,
		`retry_base: bad duration "soon"`,
		"retry_factor: must be a whole number",
		"max_retries must be from 0 to 30",
		`final_action must be cancel or unpaid, got "forgive"`,
		"dunning_window must be at least grace_period",
	} {
		require.Contains(t, msg, want)
	}
	require.Len(t, pe.Problems, 6, "%v", pe.Problems)
}

func TestPolicyFileMustBeAMapping(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"list.yaml":   "- retry_base: 1d\n",
		"scalar.json": `"cancel"`,
		"broken.json": `{"retry_base": "1d"`,
	} {
		_, err := dunning.LoadPolicyFile(writeFile(t, name, body))
		require.ErrorIs(t, err, dunning.ErrInvalidPolicy, name)
	}
}

func TestMissingPolicyFileIsAnError(t *testing.T) {
	t.Parallel()
	_, err := dunning.LoadPolicyFile(filepath.Join(t.TempDir(), "nope.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestPlanOverrideIsReadOverTheServiceDefault(t *testing.T) {
	t.Parallel()
	def := dunning.DefaultPolicy()
	def.MaxRetries = 2
	ps := dunning.NewPolicies(def)

	p, err := ps.For([]byte(`{"final_action": "unpaid"}`))
	require.NoError(t, err)
	require.Equal(t, dunning.FinalUnpaid, p.FinalAction)
	require.Equal(t, 2, p.MaxRetries, "the override starts from the configured default, not the built-in one")

	p, err = ps.For(nil)
	require.NoError(t, err)
	require.Equal(t, def, p)

	_, err = ps.For([]byte(`{"final_actoin": "unpaid"}`))
	require.ErrorIs(t, err, dunning.ErrInvalidPolicy)
	require.ErrorContains(t, err, `unknown key "final_actoin"`)
}

func TestPolicyKeysAreTheJSONNames(t *testing.T) {
	t.Parallel()
	require.Contains(t, dunning.PolicyKeys(), "retry_base")
	require.Contains(t, dunning.PolicyKeys(), "incomplete_expiry")
	require.Len(t, dunning.PolicyKeys(), 21)
}
