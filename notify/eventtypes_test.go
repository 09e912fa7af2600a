package notify_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/notify"
)

// billingEventConstants parses package billing's sources for its Evt* string constants (name -> value) and
// counts, per constant, the identifiers that use it outside its declaration.
func billingEventConstants(t *testing.T) (values map[string]string, uses map[string]int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "billing", "*.go"))
	require.NoError(t, err)
	values, uses = map[string]string{}, map[string]int{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		require.NoError(t, err, f)
		declared := map[*ast.Ident]bool{}
		for _, d := range file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Evt") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					require.NoError(t, err)
					values[name.Name] = v
					declared[name] = true
				}
			}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && strings.HasPrefix(id.Name, "Evt") && !declared[id] {
				uses[id.Name]++
			}
			return true
		})
	}
	require.NotEmpty(t, values, "found no Evt* constants in ../billing")
	return values, uses
}

// An endpoint can subscribe by name to exactly the event types billing writes to the outbox.
func TestEventTypesMatchBilling(t *testing.T) {
	t.Parallel()
	values, _ := billingEventConstants(t)
	var billingTypes []string
	for _, v := range values {
		billingTypes = append(billingTypes, v)
	}
	slices.Sort(billingTypes)
	got := slices.Clone(notify.EventTypes)
	slices.Sort(got)
	require.Equal(t, billingTypes, got, "notify.EventTypes must list every billing Evt* constant's value, and no other")
}

// Issue 5's dunning steps each have an event type that billing declares and uses.
func TestDunningEventsAreDeclaredAndEmitted(t *testing.T) {
	t.Parallel()
	values, uses := billingEventConstants(t)
	for name, typ := range map[string]string{
		"EvtInvoicePaymentFailed":  "invoice.payment_failed",
		"EvtSubscriptionPastDue":   "subscription.past_due",
		"EvtSubscriptionSuspended": "subscription.suspended",
		"EvtSubscriptionCanceled":  "subscription.canceled",
		"EvtSubscriptionRecovered": "subscription.recovered",
	} {
		require.Equal(t, typ, values[name], name)
		require.Positive(t, uses[name], "billing declares %s but never uses it", name)
		require.Contains(t, notify.EventTypes, typ)
	}
}
