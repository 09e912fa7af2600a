package pgsim

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBehaviorFromAuthKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		auth     string
		behavior string
		flaky    int
		refused  bool
	}{
		{"ok", "ok", 0, false},
		{"ok-123", "ok", 0, false},
		{"insufficient", "insufficient", 0, false},
		{"insufficient-xyz", "insufficient", 0, false},
		{"insufficient_funds-7", "insufficient", 0, false},
		{"stolen-a-b", "stolen", 0, false},
		{"expired-1", "expired", 0, false},
		{"lost-1", "lost", 0, false},
		{"blocked-1", "blocked", 0, false},
		{"limit-1", "limit", 0, false},
		{"flaky-3", "flaky-3", 3, false},
		{"flaky-2-cust7", "flaky-2", 2, false},
		{"flaky-x", "ok", 0, false},
		{"flaky", "ok", 0, false},
		{"bad", "", 0, true},
		{"bad-1", "", 0, true},
		{"reject", "", 0, true},
		{"rejected-abc", "", 0, true},
		{"a8f2c9e0b1", "ok", 0, false},
		{"badger", "ok", 0, false},
		{"authkey-expired", "", 0, true},
		{"authkey-used-7", "", 0, true},
		{"card-stolen-1", "", 0, true},
		{"card", "ok", 0, false},
		{"authkey", "ok", 0, false},
	}
	for _, c := range cases {
		_, refused := issueRefusal(c.auth)
		require.Equal(t, c.refused, refused, c.auth)
		if refused {
			continue
		}
		b, n := behaviorFromAuthKey(c.auth)
		require.Equal(t, c.behavior, b, c.auth)
		require.Equal(t, c.flaky, n, c.auth)
	}
}

func TestParseBehavior(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"ok", "insufficient", "insufficient_funds", "limit", "stolen", "lost", "expired", "blocked", "flaky-0", "flaky-5"} {
		_, _, err := parseBehavior(ok)
		require.NoError(t, err, ok)
	}
	for _, bad := range []string{"", "nope", "flaky", "flaky--1", "flaky-x", "reject"} {
		_, _, err := parseBehavior(bad)
		require.Error(t, err, bad)
	}
}
