package billing_test

import (
	"os"
	"testing"

	"github.com/dunningworks/billing/internal/testdb"
)

// TestMain runs the tests (their databases dropped in the background, testdb.Main), or — when this binary was started by a crash test as a billingd to be killed —
// the child (refund_kill_test.go).
func TestMain(m *testing.M) {
	if at := os.Getenv(killChildEnv); at != "" {
		os.Exit(runKillChild(at))
	}
	os.Exit(testdb.Main(m))
}
