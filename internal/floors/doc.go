// Package floors holds the tests that keep the house's shape (docs/architecture.md). Every package sits
// on a floor and imports only from its own floor or below, with no cycle between top-level folders
// (floors_test.go). Every query of the one generated store is called only by the package that owns its
// query file (ownership_test.go), and a package's queries touch only the tables it writes
// (tables_test.go). The ledger's account names are spelled only in billing/ledger.go (accounts_test.go).
// It has no code of its own; a new top-level package gets its floor in floors_test.go's table.
package floors
