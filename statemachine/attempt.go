package statemachine

import (
	"context"

	"github.com/qmuntal/stateless"
)

// AttemptStatus is a payment attempt's state as stored in
// payment_attempts.status and returned by the API.
type AttemptStatus string

const (
	// AttemptPending: persisted and committed; the gateway request may be in
	// flight, so the money may already have moved.
	AttemptPending   AttemptStatus = "pending"
	AttemptSucceeded AttemptStatus = "succeeded"
	AttemptDeclined  AttemptStatus = "declined"
	// AttemptUnknown is never a failure: it is resolved by gateway lookup or
	// a verified webhook, and blocks new attempts on the invoice.
	AttemptUnknown AttemptStatus = "unknown"
	// AttemptFailed is a technical failure proven to have moved no money.
	AttemptFailed   AttemptStatus = "failed"
	AttemptReversed AttemptStatus = "reversed"
)

// AttemptTrigger is an outcome or correction applied to a payment attempt.
type AttemptTrigger string

const (
	AttemptSucceed AttemptTrigger = "succeed"
	AttemptDecline AttemptTrigger = "decline"
	// AttemptMarkUnknown is legal only from pending. From unknown it is
	// illegal rather than ignored: "still unknown" after a lookup is not a
	// state change, and the caller must not write one (nor emit an event), so
	// a silent no-op would only hide that bug.
	AttemptMarkUnknown AttemptTrigger = "mark_unknown"
	AttemptFail        AttemptTrigger = "fail"
	// AttemptReverse records a refund or the net cancel of a proven duplicate.
	AttemptReverse AttemptTrigger = "reverse"
)

type noFacts struct{}

var attemptMachine = newMachine[AttemptStatus, AttemptTrigger, noFacts](
	MachineAttempt,
	[]AttemptStatus{AttemptPending, AttemptSucceeded, AttemptDeclined, AttemptUnknown, AttemptFailed, AttemptReversed},
	[]AttemptTrigger{AttemptSucceed, AttemptDecline, AttemptMarkUnknown, AttemptFail, AttemptReverse},
	nil,
	configureAttempt,
)

func configureAttempt(sm *stateless.StateMachine) {
	sm.Configure(AttemptPending).
		Permit(AttemptSucceed, AttemptSucceeded).
		Permit(AttemptDecline, AttemptDeclined).
		Permit(AttemptMarkUnknown, AttemptUnknown).
		Permit(AttemptFail, AttemptFailed)
	sm.Configure(AttemptUnknown).
		Permit(AttemptSucceed, AttemptSucceeded).
		Permit(AttemptDecline, AttemptDeclined).
		Permit(AttemptFail, AttemptFailed)
	sm.Configure(AttemptSucceeded).
		Permit(AttemptReverse, AttemptReversed)
	// declined, failed and reversed are terminal.
}

// FireAttempt applies trigger to a payment attempt in status current and
// returns the new status; see FireInvoice for the error contract.
func FireAttempt(ctx context.Context, current AttemptStatus, trigger AttemptTrigger) (AttemptStatus, error) {
	return attemptMachine.fire(ctx, current, trigger, noFacts{})
}

// AllowedAttemptTriggers lists, sorted, the triggers FireAttempt would accept
// from current; empty for terminal statuses, nil for an unknown status.
func AllowedAttemptTriggers(current AttemptStatus) []AttemptTrigger {
	return attemptMachine.allowed(current, noFacts{})
}

// AttemptStatuses returns every payment attempt status.
func AttemptStatuses() []AttemptStatus { return append([]AttemptStatus(nil), attemptMachine.states...) }

// AttemptTriggers returns every payment attempt trigger.
func AttemptTriggers() []AttemptTrigger {
	return append([]AttemptTrigger(nil), attemptMachine.triggers...)
}
