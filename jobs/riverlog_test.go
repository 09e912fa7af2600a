package jobs

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

// River's routine info lines stay out of an info-level log; its warnings do not, and debug shows all.
func TestRiverLoggerKeepsRoutineLinesOutOfInfo(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	info := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l := riverLogger(info).With("queue", "default")
	l.Info("producer: Producer job counts")
	require.Empty(t, out.String())
	l.Warn("job rescued")
	require.Contains(t, out.String(), "job rescued")
	require.Contains(t, out.String(), "component=river")
	require.Contains(t, out.String(), "queue=default")

	out.Reset()
	debug := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	riverLogger(debug).Info("producer: Producer job counts")
	require.Contains(t, out.String(), "Producer job counts")
}
