package billing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPeriodEndClampsToMonthEnd(t *testing.T) {
	t.Parallel()
	anchor := time.Date(2026, 1, 31, 9, 30, 0, 0, time.UTC)
	want := []string{"2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31", "2026-06-30", "2026-07-31",
		"2026-08-31", "2026-09-30", "2026-10-31", "2026-11-30", "2026-12-31", "2027-01-31", "2027-02-28"}
	for i, w := range want {
		got := PeriodEnd(anchor, Month, 1, i+1)
		require.Equal(t, w, got.Format("2006-01-02"), "period %d", i+1)
		require.Equal(t, 9, got.Hour())
	}
	require.Equal(t, "2028-02-29", PeriodEnd(time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), Year, 1, 4).Format("2006-01-02"))
	require.Equal(t, "2027-02-28", PeriodEnd(time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), Year, 1, 3).Format("2006-01-02"))
	require.Equal(t, "2026-07-31", PeriodEnd(anchor, Month, 3, 2).Format("2006-01-02"))
	require.Equal(t, "2026-02-14", PeriodEnd(anchor, Week, 2, 1).Format("2006-01-02"))
	require.Equal(t, "2026-02-03", PeriodEnd(anchor, Day, 3, 1).Format("2006-01-02"))
	require.Equal(t, 3, periodIndexAt(anchor, Month, 1, time.Date(2026, 3, 31, 9, 30, 0, 0, time.UTC)))
}
