package audit_test

import (
	"os"
	"testing"

	"github.com/dunningworks/billing/internal/testdb"
)

// TestMain drops the tests' databases in the background (testdb.Main).
func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }
