package floors_test

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const storePath = module + "/internal/store"

// queryOwners maps each query method of the generated store to the package that owns it: sqlc writes the
// queries of internal/store/queries/<owner>_<topic>.sql as methods of *Queries in <owner>_<topic>.sql.go.
func queryOwners(t *testing.T, storeDir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(storeDir, "*.sql.go"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no generated query files in %s", storeDir)
	owners := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".sql.go")
		_, err := os.Stat(filepath.Join(storeDir, "queries", base+".sql"))
		require.NoError(t, err, "%s is generated from a query file that is gone: delete it (sqlc leaves it behind)", filepath.Base(f))
		owner, _, ok := strings.Cut(base, "_")
		require.True(t, ok, "query file %s.sql is not named <owner>_<topic>.sql", base)
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range file.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv != nil && fn.Name.IsExported() {
				owners[fn.Name.Name] = owner
			}
		}
	}
	return owners
}

// storeCall is a call of a store query outside its owner.
type storeCall struct {
	Pkg, Query, Owner string
	At                token.Position
}

// foreignStoreCalls type-checks the module's packages (their non-test files) against the compiled export
// data of their imports and lists every call of a query of *store.Queries from a package whose top-level
// folder is not the query's owner.
func foreignStoreCalls(t *testing.T) []storeCall {
	t.Helper()
	pkgs := goList(t, "-export", "-deps", module+"/...")
	exports := map[string]string{}
	var storeDir string
	for _, p := range pkgs {
		exports[p.ImportPath] = p.Export
		if p.ImportPath == storePath {
			storeDir = p.Dir
		}
	}
	require.NotEmpty(t, storeDir, "go list did not list %s", storePath)
	owners := queryOwners(t, storeDir)

	fset := token.NewFileSet()
	var calls []storeCall
	for _, p := range pkgs {
		rel := p.rel()
		if rel == "" || p.ImportPath == storePath || len(p.GoFiles) == 0 {
			continue
		}
		caller, _, _ := strings.Cut(rel, "/")
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			require.NoError(t, err)
			files = append(files, f)
		}
		imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
			if mapped, ok := p.ImportMap[path]; ok {
				path = mapped
			}
			file := exports[path]
			if file == "" {
				return nil, fmt.Errorf("no export data for %s", path)
			}
			return os.Open(file)
		})
		info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}}
		conf := types.Config{Importer: imp}
		_, err := conf.Check(p.ImportPath, fset, files, info)
		require.NoError(t, err, "type-check %s", p.ImportPath)
		for sel, s := range info.Selections {
			fn, ok := s.Obj().(*types.Func)
			if !ok || s.Kind() != types.MethodVal || fn.Pkg() == nil || fn.Pkg().Path() != storePath {
				continue
			}
			owner, isQuery := owners[fn.Name()]
			if !isQuery || owner == caller {
				continue
			}
			calls = append(calls, storeCall{Pkg: rel, Query: fn.Name(), Owner: owner, At: fset.Position(sel.Sel.Pos())})
		}
	}
	sort.Slice(calls, func(i, j int) bool {
		if calls[i].At.Filename != calls[j].At.Filename {
			return calls[i].At.Filename < calls[j].At.Filename
		}
		return calls[i].At.Line < calls[j].At.Line
	})
	return calls
}

// TestQueryOwnership fails when a package calls a store query it does not own: each query file of
// internal/store/queries belongs to the package its name starts with, and another package that needs
// the data asks the owner (its methods or read model), not its tables.
func TestQueryOwnership(t *testing.T) {
	t.Parallel()
	for _, c := range foreignStoreCalls(t) {
		t.Errorf("%s:%d: %s calls store.%s, a query of %s's (ask %s for it instead)",
			c.At.Filename, c.At.Line, c.Pkg, c.Query, c.Owner, c.Owner)
	}
}
