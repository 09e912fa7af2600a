package statemachine

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEntitled(t *testing.T) {
	t.Parallel()

	want := map[SubscriptionStatus]bool{
		SubscriptionIncomplete:        false,
		SubscriptionIncompleteExpired: false,
		SubscriptionTrialing:          true,
		SubscriptionActive:            true,
		SubscriptionPastDue:           true, // grace: service stays on
		SubscriptionSuspended:         false,
		SubscriptionUnpaid:            false,
		SubscriptionPaused:            false,
		SubscriptionCanceled:          false,
	}
	require.Len(t, want, len(SubscriptionStatuses()), "every status needs an entitlement decision")
	for _, s := range SubscriptionStatuses() {
		e, ok := want[s]
		require.True(t, ok, "no entitlement decision for %s", s)
		require.Equal(t, e, Entitled(s), s)
	}
	require.False(t, Entitled("bogus"), "unknown statuses never grant service")
}
