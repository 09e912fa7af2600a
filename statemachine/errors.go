package statemachine

import (
	"errors"
	"fmt"
	"strings"
)

// ErrIllegalTransition matches every *IllegalTransitionError with errors.Is,
// so callers that only need "409 or not" do not have to unwrap the type.
var ErrIllegalTransition = errors.New("illegal state transition")

// IllegalTransitionError reports a trigger that cannot be fired from the
// entity's current state, either because no such transition exists or because
// a guard refused it (then Reason says which and why). Allowed is what the
// REST layer returns as "allowed" in its 409 problem: the triggers that would
// have been accepted from State with the same facts, sorted, never nil.
type IllegalTransitionError struct {
	Machine string
	State   string
	Trigger string
	Allowed []string
	// Reason is empty when the transition does not exist at all.
	Reason string
}

func (e *IllegalTransitionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: cannot %s from state %q", e.Machine, e.Trigger, e.State)
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	if len(e.Allowed) == 0 {
		fmt.Fprintf(&b, " (no triggers allowed from %q)", e.State)
	} else {
		fmt.Fprintf(&b, " (allowed from %q: %s)", e.State, strings.Join(e.Allowed, ", "))
	}
	return b.String()
}

// Is makes errors.Is(err, ErrIllegalTransition) true.
func (e *IllegalTransitionError) Is(target error) bool { return target == ErrIllegalTransition }
