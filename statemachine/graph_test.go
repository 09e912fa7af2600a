package statemachine

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// graphFiles maps machine names to their checked-in DOT files.
var graphFiles = map[string]string{
	MachineInvoice:      "invoice.dot",
	MachineAttempt:      "attempt.dot",
	MachineSubscription: "subscription.dot",
}

const graphDir = "../docs/statemachines"

// TestGraphsAreCurrent keeps docs/statemachines in step with the code. Run
// with UPDATE_GRAPHS=1 (make generate does) to rewrite the files instead.
// Not parallel: it may write files other tests do not read, but keeping it
// serial makes the update run's output unambiguous.
func TestGraphsAreCurrent(t *testing.T) {
	graphs := Graphs()
	require.Len(t, graphs, len(graphFiles))
	for name, file := range graphFiles {
		path := filepath.Join(graphDir, file)
		dot, ok := graphs[name]
		require.True(t, ok, name)
		if os.Getenv("UPDATE_GRAPHS") == "1" {
			require.NoError(t, os.MkdirAll(graphDir, 0o755))
			require.NoError(t, os.WriteFile(path, []byte(dot), 0o644))
			continue
		}
		onDisk, err := os.ReadFile(path)
		require.NoError(t, err, "run: UPDATE_GRAPHS=1 go test ./statemachine -run TestGraphsAreCurrent")
		require.Equal(t, string(onDisk), dot,
			"%s is stale; run: UPDATE_GRAPHS=1 go test ./statemachine -run TestGraphsAreCurrent", path)
	}
}

// stateless documents ToGraph as not guaranteed stable; ours is because each
// state has at most one transition per trigger. Map iteration order changes
// on every range, so repeated renders would expose any instability.
func TestGraphsAreDeterministic(t *testing.T) {
	t.Parallel()

	first := Graphs()
	for range 200 {
		require.Equal(t, first, Graphs())
	}
}

var (
	dotNode = regexp.MustCompile(`(?m)^\t(\w+) \[label="`)
	dotEdge = regexp.MustCompile(`(?m)^\t(\w+) -> (\w+) \[label=<<TABLE BORDER="0">(.*)</TABLE>>\];$`)
	dotCell = regexp.MustCompile(`<TD ALIGN="LEFT">([a-z_]+)`)
)

// The graph is rendered from the live configuration, so it also proves the
// machines know exactly the declared states and triggers: a state configured
// but missing from the lists (or the reverse) shows up here.
func TestGraphsNameExactlyTheDeclaredStatesAndTriggers(t *testing.T) {
	t.Parallel()

	check := func(t *testing.T, dot string, states, triggers []string) {
		t.Helper()
		var nodes []string
		for _, m := range dotNode.FindAllStringSubmatch(dot, -1) {
			nodes = append(nodes, m[1])
		}
		require.ElementsMatch(t, states, nodes)

		var used []string
		for _, e := range dotEdge.FindAllStringSubmatch(dot, -1) {
			require.Contains(t, states, e[1])
			require.Contains(t, states, e[2])
			for _, c := range dotCell.FindAllStringSubmatch(e[3], -1) {
				if !slices.Contains(used, c[1]) {
					used = append(used, c[1])
				}
			}
		}
		require.ElementsMatch(t, triggers, used, "every trigger is used by some transition")
	}
	g := Graphs()
	check(t, g[MachineInvoice], specInvoiceStatuses, specInvoiceTriggers)
	check(t, g[MachineAttempt], specAttemptStatuses, specAttemptTriggers)
	check(t, g[MachineSubscription], specSubStatuses, specSubTriggers)
	require.Contains(t, g[MachineInvoice], "void [amountPaidIsZero]", "guards are labelled in the graph")
}
