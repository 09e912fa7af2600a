package statemachine

import (
	"context"

	"github.com/qmuntal/stateless"
)

// SubscriptionStatus is a subscription's state as stored in
// subscriptions.status and returned by the API.
type SubscriptionStatus string

const (
	// SubscriptionIncomplete: created, first charge not yet succeeded.
	SubscriptionIncomplete        SubscriptionStatus = "incomplete"
	SubscriptionIncompleteExpired SubscriptionStatus = "incomplete_expired"
	SubscriptionTrialing          SubscriptionStatus = "trialing"
	SubscriptionActive            SubscriptionStatus = "active"
	// SubscriptionPastDue: a charge was declined; grace period, service on.
	SubscriptionPastDue SubscriptionStatus = "past_due"
	// SubscriptionSuspended: grace is over, service off, retries continue.
	SubscriptionSuspended SubscriptionStatus = "suspended"
	// SubscriptionUnpaid: dunning exhausted under the "unpaid" final action;
	// kept (not canceled) so a late payment can still recover it.
	SubscriptionUnpaid   SubscriptionStatus = "unpaid"
	SubscriptionPaused   SubscriptionStatus = "paused"
	SubscriptionCanceled SubscriptionStatus = "canceled"
)

// SubscriptionTrigger is an event that moves a subscription between statuses.
type SubscriptionTrigger string

const (
	// SubscriptionActivate: first charge succeeded, or the trial converted.
	SubscriptionActivate         SubscriptionTrigger = "activate"
	SubscriptionExpireIncomplete SubscriptionTrigger = "expire_incomplete"
	// SubscriptionPaymentFailed: a renewal or trial-end charge was declined.
	SubscriptionPaymentFailed SubscriptionTrigger = "payment_failed"
	// SubscriptionRecover: payment succeeded at any point of dunning.
	SubscriptionRecover SubscriptionTrigger = "recover"
	// SubscriptionSuspend: the grace period is over.
	SubscriptionSuspend SubscriptionTrigger = "suspend"
	// SubscriptionDunningCancel and SubscriptionDunningMarkUnpaid end an
	// exhausted dunning run. They are two triggers rather than one trigger
	// with two guarded transitions because the final action is dunning
	// policy: the dunning package chooses, this machine only says both ends
	// are legal, and the graph shows two plain edges instead of guards.
	SubscriptionDunningCancel     SubscriptionTrigger = "dunning_cancel"
	SubscriptionDunningMarkUnpaid SubscriptionTrigger = "dunning_mark_unpaid"
	SubscriptionPause             SubscriptionTrigger = "pause"
	SubscriptionResume            SubscriptionTrigger = "resume"
	// SubscriptionCancel: customer or support cancel from any live state.
	SubscriptionCancel SubscriptionTrigger = "cancel"
)

var subscriptionMachine = newMachine[SubscriptionStatus, SubscriptionTrigger, noFacts](
	MachineSubscription,
	[]SubscriptionStatus{
		SubscriptionIncomplete, SubscriptionIncompleteExpired, SubscriptionTrialing, SubscriptionActive,
		SubscriptionPastDue, SubscriptionSuspended, SubscriptionUnpaid, SubscriptionPaused, SubscriptionCanceled,
	},
	[]SubscriptionTrigger{
		SubscriptionActivate, SubscriptionExpireIncomplete, SubscriptionPaymentFailed, SubscriptionRecover,
		SubscriptionSuspend, SubscriptionDunningCancel, SubscriptionDunningMarkUnpaid, SubscriptionPause,
		SubscriptionResume, SubscriptionCancel,
	},
	nil,
	configureSubscription,
)

func configureSubscription(sm *stateless.StateMachine) {
	sm.Configure(SubscriptionIncomplete).
		Permit(SubscriptionActivate, SubscriptionActive).
		Permit(SubscriptionExpireIncomplete, SubscriptionIncompleteExpired).
		Permit(SubscriptionCancel, SubscriptionCanceled)
	sm.Configure(SubscriptionTrialing).
		Permit(SubscriptionActivate, SubscriptionActive).
		Permit(SubscriptionPaymentFailed, SubscriptionPastDue).
		Permit(SubscriptionCancel, SubscriptionCanceled)
	sm.Configure(SubscriptionActive).
		Permit(SubscriptionPaymentFailed, SubscriptionPastDue).
		Permit(SubscriptionPause, SubscriptionPaused).
		Permit(SubscriptionCancel, SubscriptionCanceled)
	sm.Configure(SubscriptionPastDue).
		Permit(SubscriptionRecover, SubscriptionActive).
		Permit(SubscriptionSuspend, SubscriptionSuspended).
		Permit(SubscriptionDunningCancel, SubscriptionCanceled).
		Permit(SubscriptionDunningMarkUnpaid, SubscriptionUnpaid).
		Permit(SubscriptionCancel, SubscriptionCanceled)
	sm.Configure(SubscriptionSuspended).
		Permit(SubscriptionRecover, SubscriptionActive).
		Permit(SubscriptionDunningCancel, SubscriptionCanceled).
		Permit(SubscriptionDunningMarkUnpaid, SubscriptionUnpaid).
		Permit(SubscriptionCancel, SubscriptionCanceled)
	sm.Configure(SubscriptionUnpaid).
		Permit(SubscriptionRecover, SubscriptionActive).
		Permit(SubscriptionCancel, SubscriptionCanceled)
	sm.Configure(SubscriptionPaused).
		Permit(SubscriptionResume, SubscriptionActive).
		Permit(SubscriptionCancel, SubscriptionCanceled)
	// canceled and incomplete_expired are terminal.
}

// FireSubscription applies trigger to a subscription in status current and
// returns the new status; see FireInvoice for the error contract.
func FireSubscription(ctx context.Context, current SubscriptionStatus, trigger SubscriptionTrigger) (SubscriptionStatus, error) {
	return subscriptionMachine.fire(ctx, current, trigger, noFacts{})
}

// AllowedSubscriptionTriggers lists, sorted, the triggers FireSubscription
// would accept from current; empty for terminal statuses, nil for an unknown
// status.
func AllowedSubscriptionTriggers(current SubscriptionStatus) []SubscriptionTrigger {
	return subscriptionMachine.allowed(current, noFacts{})
}

// SubscriptionStatuses returns every subscription status.
func SubscriptionStatuses() []SubscriptionStatus {
	return append([]SubscriptionStatus(nil), subscriptionMachine.states...)
}

// SubscriptionTriggers returns every subscription trigger.
func SubscriptionTriggers() []SubscriptionTrigger {
	return append([]SubscriptionTrigger(nil), subscriptionMachine.triggers...)
}

// Entitled reports whether a subscription in this status gets service. Past
// due is still entitled: that is the grace period. Unknown statuses are not.
func Entitled(status SubscriptionStatus) bool {
	switch status {
	case SubscriptionTrialing, SubscriptionActive, SubscriptionPastDue:
		return true
	default:
		return false
	}
}
