// Package floors holds the tests that keep the house's shape (docs/architecture.md): every package sits on
// a floor and imports only from its own floor or below (floors_test.go), and every query of the one
// generated store is called only by the package that owns its query file (ownership_test.go). It has no
// code of its own; a new top-level package gets its floor in floors_test.go's table.
package floors
