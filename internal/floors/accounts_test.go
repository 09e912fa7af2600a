package floors_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// ledgerFile is the one place the ledger's account names are spelled.
const ledgerFile = "billing/ledger.go"

// ledgerAccountNames reads ledgerFile's account names: the constants ("revenue") and the prefixes the
// ...Account functions put before a customer or gateway ("receivable:").
func ledgerAccountNames(t *testing.T, root string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, ledgerFile), nil, parser.SkipObjectResolution)
	require.NoError(t, err)
	var names []string
	collect := func(n ast.Node) {
		ast.Inspect(n, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				s, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				names = append(names, s)
			}
			return true
		})
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.GenDecl: // const AccountRevenue = "revenue"
			if d.Tok == token.CONST {
				collect(d)
			}
		case *ast.FuncDecl: // func ClearingAccount(gw string) string { return "clearing:" + gw }
			if strings.HasSuffix(d.Name.Name, "Account") && d.Body != nil {
				collect(d.Body)
			}
		}
	}
	return names
}

// TestLedgerAccountsAreNamedOnce fails when an account name of the ledger is spelled outside ledgerFile:
// in another Go file's string literal (struct tags aside) or in a query. A second spelling is how a
// reader comes to sum the wrong account when the name changes; ask billing's functions for the name.
func TestLedgerAccountsAreNamedOnce(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	names := ledgerAccountNames(t, root)
	require.Contains(t, names, "clearing:", "%s should name the clearing accounts", ledgerFile)
	isAccount := func(s string) bool {
		for _, n := range names {
			if s == n || (strings.HasSuffix(n, ":") && strings.HasPrefix(s, n)) {
				return true
			}
		}
		return false
	}
	sqlLiteral := regexp.MustCompile(`'([^']*)'`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case rel == ledgerFile || strings.HasSuffix(path, "_test.go"):
		case strings.HasSuffix(path, ".go"):
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
			require.NoError(t, err)
			tags := map[*ast.BasicLit]bool{}
			ast.Inspect(f, func(n ast.Node) bool {
				if fld, ok := n.(*ast.Field); ok && fld.Tag != nil {
					tags[fld.Tag] = true
				}
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && !tags[lit] {
					if s, err := strconv.Unquote(lit.Value); err == nil && isAccount(s) {
						t.Errorf("%s spells the ledger account %q; use billing's name for it (%s)", rel, s, ledgerFile)
					}
				}
				return true
			})
		case strings.HasPrefix(rel, filepath.Join("internal", "store", "queries")) && strings.HasSuffix(path, ".sql"):
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			for _, m := range sqlLiteral.FindAllStringSubmatch(sqlComment.ReplaceAllString(string(b), ""), -1) {
				if isAccount(m[1]) {
					t.Errorf("%s spells the ledger account '%s'; pass billing's name for it as a parameter (%s)", rel, m[1], ledgerFile)
				}
			}
		}
		return nil
	})
	require.NoError(t, err)
}
