package jobs

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/billing"
)

// The silence alert is logged once when a gateway goes quiet and once when it recovers, not on every
// check in between, and each gateway is tracked on its own.
func TestSilenceAlertLogsOncePerTransition(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	alerts := newSilenceAlerts(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	check := func(simSilent, tossSilent bool) {
		alerts.observe(context.Background(), []billing.WebhookHealth{
			{Gateway: "sim", Silent: simSilent, Charges: 3}, {Gateway: "toss", Silent: tossSilent, Charges: 1},
		})
	}
	lines := func() []string { return strings.Split(strings.TrimSpace(buf.String()), "\n") }

	check(false, false)
	require.Empty(t, buf.String(), "healthy from the start: nothing to say")
	check(true, false)
	check(true, false)
	check(true, false)
	require.Len(t, lines(), 1)
	require.Contains(t, lines()[0], "level=WARN")
	require.Contains(t, lines()[0], "gateway=sim")
	require.Contains(t, lines()[0], "alert=webhooks_silent")
	check(true, true)
	require.Len(t, lines(), 2)
	require.Contains(t, lines()[1], "gateway=toss")
	check(false, true)
	check(false, true)
	require.Len(t, lines(), 3)
	require.Contains(t, lines()[2], "level=INFO")
	require.Contains(t, lines()[2], "arriving again")
	require.Contains(t, lines()[2], "gateway=sim")
}
