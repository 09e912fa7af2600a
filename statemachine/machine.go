package statemachine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/qmuntal/stateless"
)

// Machine names, used in IllegalTransitionError.Machine and as keys of Graphs.
const (
	MachineInvoice      = "invoice"
	MachineAttempt      = "payment_attempt"
	MachineSubscription = "subscription"
)

// ErrUnknownState is returned when the status handed to a Fire function is not
// one of the machine's states: a corrupt row or a caller bug, never a 409.
var ErrUnknownState = errors.New("unknown state")

// errNoEntity means stateless asked for the state outside a Fire call. It only
// happens for ToGraph, which then leaves out the "init" arrow; that is wanted
// because the subscription machine has more than one entry state.
var errNoEntity = errors.New("statemachine: no entity in context")

// cell is the external storage of one fire: the loaded row's status and the
// facts the guards read. It travels in the context because stateless binds
// the accessor at construction, and we want one machine configured once for
// all concurrent fires rather than a machine per call.
type cell[S ~string, F any] struct {
	state S
	facts F
}

// cellKey is distinct per instantiation, so one machine's guards can never
// read another machine's cell.
type cellKey[S ~string, F any] struct{}

func cellFrom[S ~string, F any](ctx context.Context) (*cell[S, F], bool) {
	c, ok := ctx.Value(cellKey[S, F]{}).(*cell[S, F])
	return c, ok
}

// machine wraps one configured stateless machine with the typed surface the
// exported Fire/Allowed functions need.
type machine[S ~string, T ~string, F any] struct {
	name     string
	states   []S
	triggers []T
	sm       *stateless.StateMachine
	// guardReasons explains, by guard function name (what stateless reports),
	// why a refused guard makes the trigger illegal.
	guardReasons map[string]string
}

func newMachine[S ~string, T ~string, F any](
	name string,
	states []S,
	triggers []T,
	guardReasons map[string]string,
	configure func(*stateless.StateMachine),
) *machine[S, T, F] {
	m := &machine[S, T, F]{name: name, states: states, triggers: triggers, guardReasons: guardReasons}
	// FiringImmediate, not the recommended FiringQueued: the queued mode keeps
	// one trigger queue per machine, so two goroutines firing the shared
	// machine could run each other's triggers and return before their own
	// ran. Immediate mode just evaluates the (read-only) configuration; run-to-
	// completion is irrelevant because no entry/exit action fires a trigger.
	m.sm = stateless.NewStateMachineWithExternalStorage(
		func(ctx context.Context) (stateless.State, error) {
			c, ok := cellFrom[S, F](ctx)
			if !ok {
				return nil, errNoEntity
			}
			return c.state, nil
		},
		func(ctx context.Context, s stateless.State) error {
			c, ok := cellFrom[S, F](ctx)
			if !ok {
				return errNoEntity
			}
			c.state = s.(S)
			return nil
		},
		stateless.FiringImmediate,
	)
	m.sm.OnUnhandledTrigger(m.illegal)
	// Configuring every state up front means the configuration map is never
	// written after init (stateless adds a state lazily on first sight), which
	// is what makes concurrent fires and ToGraph race-free, and puts terminal
	// states into the graph.
	for _, s := range states {
		m.sm.Configure(s)
	}
	configure(m.sm)
	return m
}

func (m *machine[S, T, F]) known(s S) bool { return slices.Contains(m.states, s) }

func (m *machine[S, T, F]) fire(ctx context.Context, current S, trigger T, facts F) (S, error) {
	if !m.known(current) {
		return current, fmt.Errorf("%s: %w %q", m.name, ErrUnknownState, current)
	}
	c := &cell[S, F]{state: current, facts: facts}
	if err := m.sm.FireCtx(context.WithValue(ctx, cellKey[S, F]{}, c), trigger); err != nil {
		return current, err
	}
	return c.state, nil
}

// allowed lists the triggers whose guards pass for the given state and facts,
// sorted so API responses and error messages are stable.
func (m *machine[S, T, F]) allowed(current S, facts F) []T {
	if !m.known(current) {
		return nil
	}
	ctx := context.WithValue(context.Background(), cellKey[S, F]{}, &cell[S, F]{state: current, facts: facts})
	return m.permitted(ctx)
}

func (m *machine[S, T, F]) permitted(ctx context.Context) []T {
	ts, err := m.sm.PermittedTriggersCtx(ctx)
	if err != nil {
		// Only the accessor can fail, and callers always put a cell in ctx.
		panic(fmt.Sprintf("statemachine: %s: permitted triggers: %v", m.name, err))
	}
	out := make([]T, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.(T))
	}
	slices.Sort(out)
	return out
}

// illegal is stateless' unhandled-trigger hook: it turns both "no such
// transition" and "guard refused" into one typed error.
func (m *machine[S, T, F]) illegal(ctx context.Context, state stateless.State, trigger stateless.Trigger, unmetGuards []string) error {
	allowed := m.permitted(ctx)
	e := &IllegalTransitionError{
		Machine: m.name,
		State:   fmt.Sprint(state),
		Trigger: fmt.Sprint(trigger),
		Allowed: make([]string, 0, len(allowed)),
	}
	for _, t := range allowed {
		e.Allowed = append(e.Allowed, string(t))
	}
	reasons := make([]string, 0, len(unmetGuards))
	for _, g := range unmetGuards {
		r, ok := m.guardReasons[g]
		if !ok {
			r = "guard " + g + " refused"
		}
		reasons = append(reasons, r)
	}
	e.Reason = strings.Join(reasons, "; ")
	return e
}

// Graphs returns the DOT source of every machine keyed by machine name
// (MachineInvoice, MachineAttempt, MachineSubscription). The output is
// deterministic: stateless sorts states and triggers, and each state has at
// most one transition per trigger, so nothing is left to map order.
func Graphs() map[string]string {
	return map[string]string{
		MachineInvoice:      invoiceMachine.sm.ToGraph(),
		MachineAttempt:      attemptMachine.sm.ToGraph(),
		MachineSubscription: subscriptionMachine.sm.ToGraph(),
	}
}
