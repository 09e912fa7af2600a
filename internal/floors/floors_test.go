package floors_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The floors, bottom up. A package imports only from its own floor or below, and the rooms (the entries
// of floorOf) import each other without a cycle.
const (
	ground   = iota + 1 // the one generated store and the utilities everything stands on
	rules               // pure policy, the state machines, the gateway boundary
	domain              // the services that own tables
	ways                // the ways in: REST, the support console, River workers
	assembly            // the composition root and the development tools
	commands            // the binaries
)

var floorNames = map[int]string{ground: "ground", rules: "rules", domain: "domain", ways: "ways in",
	assembly: "assembly", commands: "commands"}

// floorOf places every package of the module on a floor, by folder. A package not named here stands on
// the floor of its nearest named parent folder (gateway/guard is gateway's). A new top-level package gets
// a line here; docs/architecture.md ("Where a new package goes") says which floor.
var floorOf = map[string]int{
	"cmd": commands, // billingd, billingctl, pgsim, devpg, chaos, bench

	"app":      assembly, // the composition root; app/testenv, a whole billingd for tests
	"devtools": assembly, // chaos, devpg, stripemock, timelinesvg

	"api":     ways,
	"console": ways,
	"jobs":    ways,
	// the customer's page over package portal (a ways-in room inside portal's folder)
	"portal/web": ways,

	"billing":    domain,
	"billingkey": domain,
	"notify":     domain,
	"reconcile":  domain,
	"audit":      domain,
	"portal":     domain, // customer-page links, the page's actions, receipts; its HTTP pages are portal/web
	"mail":       domain, // customer emails: the outbox, the templates, the SMTP sender

	"dunning":      rules,
	"statemachine": rules,
	"gateway":      rules,

	"internal": ground, // internal/store and the utilities (apperr, dbx, ids, page, idem, config, keyring)
	// testdb migrates a fresh database, so it stands on migrations, which stands on internal/dbx: a room
	// of its own keeps internal -> migrations -> internal from being a cycle.
	"internal/testdb": ground,
	"clock":           ground,
	"money":           ground,
	"migrations":      ground,
}

// room is the entry of floorOf that pkg (a path inside the module) belongs to, or "".
func room(pkg string) string {
	for p := pkg; ; {
		if _, ok := floorOf[p]; ok {
			return p
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			return ""
		}
		p = p[:i]
	}
}

// floorViolations lists every import that goes up a floor, every package with no floor and every cycle
// between rooms. Test files' imports do not count: a test may stand on a whole app.
func floorViolations(pkgs []listedPackage) []string {
	var bad []string
	edges := map[string]map[string]bool{}
	for _, p := range pkgs {
		from := p.rel()
		if from == "" {
			continue
		}
		fromRoom := room(from)
		if fromRoom == "" {
			bad = append(bad, fmt.Sprintf("%s has no floor: add its folder to floorOf in internal/floors/floors_test.go (docs/architecture.md says where a new package goes)", from))
			continue
		}
		for _, imp := range p.Imports {
			to, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			toRoom := room(to)
			if toRoom == "" {
				continue // reported as its own package
			}
			if floorOf[toRoom] > floorOf[fromRoom] {
				bad = append(bad, fmt.Sprintf("%s (%s floor) imports %s (%s floor, above it)", from,
					floorNames[floorOf[fromRoom]], to, floorNames[floorOf[toRoom]]))
			}
			if toRoom != fromRoom {
				if edges[fromRoom] == nil {
					edges[fromRoom] = map[string]bool{}
				}
				edges[fromRoom][toRoom] = true
			}
		}
	}
	return append(bad, roomCycles(edges)...)
}

// roomCycles finds the cycles of the room graph (depth first; each cycle reported once, from its first
// room in name order).
func roomCycles(edges map[string]map[string]bool) []string {
	var rooms []string
	for r := range edges {
		rooms = append(rooms, r)
	}
	sort.Strings(rooms)
	seen := map[string]bool{}
	var out []string
	const (
		onPath = 1
		done   = 2
	)
	state := map[string]int{}
	var path []string
	var walk func(r string)
	walk = func(r string) {
		state[r] = onPath
		path = append(path, r)
		var next []string
		for n := range edges[r] {
			next = append(next, n)
		}
		sort.Strings(next)
		for _, n := range next {
			switch state[n] {
			case onPath:
				cycle := append(slices.Clone(path[slices.Index(path, n):]), n)
				key := strings.Join(cycle, " -> ")
				if !seen[key] {
					seen[key] = true
					out = append(out, "import cycle between rooms: "+key)
				}
			case 0:
				walk(n)
			}
		}
		path = path[:len(path)-1]
		state[r] = done
	}
	for _, r := range rooms {
		if state[r] == 0 {
			walk(r)
		}
	}
	return out
}

// TestFloors holds the module's import graph, as `go list` sees it, to the floors.
func TestFloors(t *testing.T) {
	t.Parallel()
	pkgs := goList(t, module+"/...")
	require.Greater(t, len(pkgs), 20, "go list should see the whole module")
	require.Empty(t, floorViolations(pkgs))
}

// TestFloorViolations shows the check catches what it is for, so a green TestFloors means something.
func TestFloorViolations(t *testing.T) {
	t.Parallel()
	pkg := func(path string, imports ...string) listedPackage {
		p := listedPackage{ImportPath: module + "/" + path}
		for _, i := range imports {
			p.Imports = append(p.Imports, module+"/"+i)
		}
		p.Imports = append(p.Imports, "context", "github.com/jackc/pgx/v5")
		return p
	}
	for _, tc := range []struct {
		name string
		pkgs []listedPackage
		want []string
	}{
		{"the house as meant", []listedPackage{pkg("cmd/billingd", "app"), pkg("app", "api", "jobs"),
			pkg("api", "billing"), pkg("billingkey", "billing"), pkg("billing", "dunning", "internal/store"),
			pkg("gateway/guard", "gateway"), pkg("internal/store")}, nil},
		{"up a floor", []listedPackage{pkg("jobs", "api"), pkg("billing", "jobs"), pkg("gateway/toss", "billing")}, []string{
			"billing (domain floor) imports jobs (ways in floor, above it)",
			"gateway/toss (rules floor) imports billing (domain floor, above it)",
		}},
		{"a new folder with no floor", []listedPackage{pkg("refunds", "billing")}, []string{
			"refunds has no floor: add its folder to floorOf in internal/floors/floors_test.go (docs/architecture.md says where a new package goes)",
		}},
		{"a cycle on one floor", []listedPackage{pkg("billingkey", "billing"), pkg("billing/keys", "billingkey")}, []string{
			"import cycle between rooms: billing -> billingkey -> billing",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, floorViolations(tc.pkgs))
		})
	}
}
