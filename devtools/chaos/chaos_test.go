package chaos_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/devtools/chaos"
	"github.com/dunningworks/billing/internal/testdb"
)

// TestShortSeed is the chaos suite's short configuration, run by `make test`: real billingd and pgsim
// processes, replicas SIGKILLed about every second, gateway faults, two months on the test clock.
// `make chaos` runs the long one.
func TestShortSeed(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos run builds and runs real processes; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := chaos.Run(ctx, chaos.Config{Seed: 11, Subs: 40, Months: 2, Replicas: 3, KillEvery: time.Second,
		ServerURL: testdb.ServerURL(), WorkDir: t.TempDir(), Out: &out})
	require.NoError(t, err, out.String())
	var report bytes.Buffer
	rep.Print(&report)
	t.Log("\n" + report.String())
	require.False(t, rep.Failed(), "%s\n%s", report.String(), out.String())
	total := 0
	for _, n := range rep.Kills {
		total += n
	}
	require.Positive(t, total, "the run must actually kill replicas")
	require.Positive(t, rep.Charges)
}
