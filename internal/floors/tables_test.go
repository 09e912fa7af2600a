package floors_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sharedTables are the only tables a package other than their owner may touch through its own queries,
// each with the reason. Keep it short: the rule is to ask the owner.
var sharedTables = map[string]map[string]string{
	// events is billing's outbox: billing writes it in the transaction of the change, notify delivers it
	// (cursor, fan-out to endpoints, payloads). Reading the outbox where it lies is the pattern itself.
	"events": {"notify": "the outbox's consumer"},
	// idempotency_keys is api's; the periodic reaper in jobs deletes rows past retention (maintenance, not
	// a decision), so jobs does not import api.
	"idempotency_keys": {"jobs": "the retention reaper"},
}

var (
	createTable = regexp.MustCompile(`(?i)\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)`)
	tableRef    = regexp.MustCompile(`(?i)\b(DELETE\s+FROM|FROM|JOIN|INTO|UPDATE)\s+([a-z_][a-z0-9_]*)`)
	sqlComment  = regexp.MustCompile(`--[^\n]*`)
)

// tableUse is which packages' query files write and read a table.
type tableUse struct{ writers, readers map[string]bool }

// tableUses reads the migrations for the tables and the query files for who writes and reads each.
func tableUses(t *testing.T, migrationsDir, queriesDir string) map[string]*tableUse {
	t.Helper()
	uses := map[string]*tableUse{}
	migrations, err := filepath.Glob(filepath.Join(migrationsDir, "*.sql"))
	require.NoError(t, err)
	require.NotEmpty(t, migrations)
	for _, f := range migrations {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range createTable.FindAllStringSubmatch(sqlComment.ReplaceAllString(string(b), ""), -1) {
			uses[strings.ToLower(m[1])] = &tableUse{writers: map[string]bool{}, readers: map[string]bool{}}
		}
	}
	queries, err := filepath.Glob(filepath.Join(queriesDir, "*.sql"))
	require.NoError(t, err)
	require.NotEmpty(t, queries)
	for _, f := range queries {
		owner, _, _ := strings.Cut(filepath.Base(f), "_")
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range tableRef.FindAllStringSubmatch(sqlComment.ReplaceAllString(string(b), ""), -1) {
			u := uses[strings.ToLower(m[2])]
			if u == nil {
				continue // a CTE, a function, a subquery: not a table of ours
			}
			switch strings.ToUpper(strings.Fields(m[1])[0]) {
			case "FROM", "JOIN":
				u.readers[owner] = true
			default:
				u.writers[owner] = true
			}
		}
	}
	return uses
}

// tableViolations lists tables written by more than one package and tables read by a package that does
// not write them: the writer owns a table, and the others ask it.
func tableViolations(uses map[string]*tableUse) []string {
	var bad []string
	for table, u := range uses {
		owners := keys(u.writers)
		if len(owners) == 0 {
			owners = keys(u.readers) // a table no query writes: its one reader is its owner
		}
		others := map[string]bool{}
		for p := range u.writers {
			others[p] = true
		}
		for p := range u.readers {
			others[p] = true
		}
		owner := ""
		if len(owners) > 0 {
			owner = owners[0]
		}
		for _, p := range keys(others) {
			if p == owner || sharedTables[table][p] != "" {
				continue
			}
			bad = append(bad, fmt.Sprintf("table %s is %s's, but %s's queries use it: move the query to %s_*.sql and ask %s for the data",
				table, owner, p, owner, owner))
		}
	}
	sort.Strings(bad)
	return bad
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestTableOwnership fails when a package's queries touch a table another package owns (the package
// whose queries write it). With TestQueryOwnership this holds "no package reaches into another's tables".
func TestTableOwnership(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	uses := tableUses(t, filepath.Join(root, "migrations", "sql"), filepath.Join(root, "internal", "store", "queries"))
	require.Contains(t, uses, "invoices", "the migrations should create billing's tables")
	require.True(t, uses["invoices"].writers["billing"], "billing's queries should write invoices")
	require.Empty(t, tableViolations(uses))
}

// TestTableViolations shows the table check catches a reader and a second writer.
func TestTableViolations(t *testing.T) {
	t.Parallel()
	use := func(writers, readers []string) *tableUse {
		u := &tableUse{writers: map[string]bool{}, readers: map[string]bool{}}
		for _, w := range writers {
			u.writers[w] = true
		}
		for _, r := range readers {
			u.readers[r] = true
		}
		return u
	}
	require.Empty(t, tableViolations(map[string]*tableUse{"invoices": use([]string{"billing"}, []string{"billing"})}))
	require.Equal(t, []string{
		"table invoices is billing's, but console's queries use it: move the query to billing_*.sql and ask billing for the data",
		"table ledger_entries is billing's, but reconcile's queries use it: move the query to billing_*.sql and ask billing for the data",
	}, tableViolations(map[string]*tableUse{
		"invoices":       use([]string{"billing"}, []string{"console"}),
		"ledger_entries": use([]string{"billing", "reconcile"}, nil),
	}))
}

// moduleRoot is the directory of the module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.mod above the test")
		dir = parent
	}
}
