package statemachine

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// The tables below are the specification: every (state, trigger) pair of
// every machine, written out by hand with its expected result. The coverage
// checks make adding a state or trigger without a decision here a failure.

const illegal = "ILLEGAL"

// paid is the guard input of an invoice case: either/zero/nonzero. Unguarded
// pairs use "either" and are checked with both facts, which proves the guard
// does not leak into them; the guarded pair has one row per outcome.
type paid int

const (
	either paid = iota
	zeroPaid
	somePaid
)

type invoiceCase struct {
	from    InvoiceStatus
	trigger InvoiceTrigger
	paid    paid
	want    string
}

var invoiceSpec = []invoiceCase{
	{InvoiceDraft, InvoiceFinalize, either, "open"},
	{InvoiceDraft, InvoicePay, either, illegal},
	{InvoiceDraft, InvoiceVoid, either, "void"},
	{InvoiceDraft, InvoiceMarkUncollectible, either, illegal},

	{InvoiceOpen, InvoiceFinalize, either, illegal},
	{InvoiceOpen, InvoicePay, either, "paid"},
	{InvoiceOpen, InvoiceVoid, zeroPaid, "void"},
	{InvoiceOpen, InvoiceVoid, somePaid, illegal},
	{InvoiceOpen, InvoiceMarkUncollectible, either, "uncollectible"},

	{InvoicePaid, InvoiceFinalize, either, illegal},
	{InvoicePaid, InvoicePay, either, illegal},
	{InvoicePaid, InvoiceVoid, either, illegal},
	{InvoicePaid, InvoiceMarkUncollectible, either, illegal},

	{InvoiceVoided, InvoiceFinalize, either, illegal},
	{InvoiceVoided, InvoicePay, either, illegal},
	{InvoiceVoided, InvoiceVoid, either, illegal},
	{InvoiceVoided, InvoiceMarkUncollectible, either, illegal},

	{InvoiceUncollectible, InvoiceFinalize, either, illegal},
	{InvoiceUncollectible, InvoicePay, either, "paid"},
	{InvoiceUncollectible, InvoiceVoid, either, illegal},
	{InvoiceUncollectible, InvoiceMarkUncollectible, either, illegal},
}

type attemptCase struct {
	from    AttemptStatus
	trigger AttemptTrigger
	want    string
}

var attemptSpec = []attemptCase{
	{AttemptPending, AttemptSucceed, "succeeded"},
	{AttemptPending, AttemptDecline, "declined"},
	{AttemptPending, AttemptMarkUnknown, "unknown"},
	{AttemptPending, AttemptFail, "failed"},
	{AttemptPending, AttemptReverse, illegal},

	{AttemptSucceeded, AttemptSucceed, illegal},
	{AttemptSucceeded, AttemptDecline, illegal},
	{AttemptSucceeded, AttemptMarkUnknown, illegal},
	{AttemptSucceeded, AttemptFail, illegal},
	{AttemptSucceeded, AttemptReverse, "reversed"},

	{AttemptDeclined, AttemptSucceed, illegal},
	{AttemptDeclined, AttemptDecline, illegal},
	{AttemptDeclined, AttemptMarkUnknown, illegal},
	{AttemptDeclined, AttemptFail, illegal},
	{AttemptDeclined, AttemptReverse, illegal},

	{AttemptUnknown, AttemptSucceed, "succeeded"},
	{AttemptUnknown, AttemptDecline, "declined"},
	{AttemptUnknown, AttemptMarkUnknown, illegal}, // "still unknown" is not a transition
	{AttemptUnknown, AttemptFail, "failed"},
	{AttemptUnknown, AttemptReverse, illegal},

	{AttemptFailed, AttemptSucceed, illegal},
	{AttemptFailed, AttemptDecline, illegal},
	{AttemptFailed, AttemptMarkUnknown, illegal},
	{AttemptFailed, AttemptFail, illegal},
	{AttemptFailed, AttemptReverse, illegal},

	{AttemptReversed, AttemptSucceed, illegal},
	{AttemptReversed, AttemptDecline, illegal},
	{AttemptReversed, AttemptMarkUnknown, illegal},
	{AttemptReversed, AttemptFail, illegal},
	{AttemptReversed, AttemptReverse, illegal},
}

type subscriptionCase struct {
	from    SubscriptionStatus
	trigger SubscriptionTrigger
	want    string
}

var subscriptionSpec = []subscriptionCase{
	{SubscriptionIncomplete, SubscriptionActivate, "active"},
	{SubscriptionIncomplete, SubscriptionExpireIncomplete, "incomplete_expired"},
	{SubscriptionIncomplete, SubscriptionPaymentFailed, illegal},
	{SubscriptionIncomplete, SubscriptionRecover, illegal},
	{SubscriptionIncomplete, SubscriptionSuspend, illegal},
	{SubscriptionIncomplete, SubscriptionDunningCancel, illegal},
	{SubscriptionIncomplete, SubscriptionDunningMarkUnpaid, illegal},
	{SubscriptionIncomplete, SubscriptionPause, illegal},
	{SubscriptionIncomplete, SubscriptionResume, illegal},
	{SubscriptionIncomplete, SubscriptionCancel, "canceled"},

	{SubscriptionIncompleteExpired, SubscriptionActivate, illegal},
	{SubscriptionIncompleteExpired, SubscriptionExpireIncomplete, illegal},
	{SubscriptionIncompleteExpired, SubscriptionPaymentFailed, illegal},
	{SubscriptionIncompleteExpired, SubscriptionRecover, illegal},
	{SubscriptionIncompleteExpired, SubscriptionSuspend, illegal},
	{SubscriptionIncompleteExpired, SubscriptionDunningCancel, illegal},
	{SubscriptionIncompleteExpired, SubscriptionDunningMarkUnpaid, illegal},
	{SubscriptionIncompleteExpired, SubscriptionPause, illegal},
	{SubscriptionIncompleteExpired, SubscriptionResume, illegal},
	{SubscriptionIncompleteExpired, SubscriptionCancel, illegal},

	{SubscriptionTrialing, SubscriptionActivate, "active"},
	{SubscriptionTrialing, SubscriptionExpireIncomplete, illegal},
	{SubscriptionTrialing, SubscriptionPaymentFailed, "past_due"},
	{SubscriptionTrialing, SubscriptionRecover, illegal},
	{SubscriptionTrialing, SubscriptionSuspend, illegal},
	{SubscriptionTrialing, SubscriptionDunningCancel, illegal},
	{SubscriptionTrialing, SubscriptionDunningMarkUnpaid, illegal},
	{SubscriptionTrialing, SubscriptionPause, illegal},
	{SubscriptionTrialing, SubscriptionResume, illegal},
	{SubscriptionTrialing, SubscriptionCancel, "canceled"},

	{SubscriptionActive, SubscriptionActivate, illegal},
	{SubscriptionActive, SubscriptionExpireIncomplete, illegal},
	{SubscriptionActive, SubscriptionPaymentFailed, "past_due"},
	{SubscriptionActive, SubscriptionRecover, illegal},
	{SubscriptionActive, SubscriptionSuspend, illegal},
	{SubscriptionActive, SubscriptionDunningCancel, illegal},
	{SubscriptionActive, SubscriptionDunningMarkUnpaid, illegal},
	{SubscriptionActive, SubscriptionPause, "paused"},
	{SubscriptionActive, SubscriptionResume, illegal},
	{SubscriptionActive, SubscriptionCancel, "canceled"},

	{SubscriptionPastDue, SubscriptionActivate, illegal},
	{SubscriptionPastDue, SubscriptionExpireIncomplete, illegal},
	{SubscriptionPastDue, SubscriptionPaymentFailed, illegal}, // a failed retry is not a transition
	{SubscriptionPastDue, SubscriptionRecover, "active"},
	{SubscriptionPastDue, SubscriptionSuspend, "suspended"},
	{SubscriptionPastDue, SubscriptionDunningCancel, "canceled"},
	{SubscriptionPastDue, SubscriptionDunningMarkUnpaid, "unpaid"},
	{SubscriptionPastDue, SubscriptionPause, illegal},
	{SubscriptionPastDue, SubscriptionResume, illegal},
	{SubscriptionPastDue, SubscriptionCancel, "canceled"},

	{SubscriptionSuspended, SubscriptionActivate, illegal},
	{SubscriptionSuspended, SubscriptionExpireIncomplete, illegal},
	{SubscriptionSuspended, SubscriptionPaymentFailed, illegal},
	{SubscriptionSuspended, SubscriptionRecover, "active"},
	{SubscriptionSuspended, SubscriptionSuspend, illegal},
	{SubscriptionSuspended, SubscriptionDunningCancel, "canceled"},
	{SubscriptionSuspended, SubscriptionDunningMarkUnpaid, "unpaid"},
	{SubscriptionSuspended, SubscriptionPause, illegal},
	{SubscriptionSuspended, SubscriptionResume, illegal},
	{SubscriptionSuspended, SubscriptionCancel, "canceled"},

	{SubscriptionUnpaid, SubscriptionActivate, illegal},
	{SubscriptionUnpaid, SubscriptionExpireIncomplete, illegal},
	{SubscriptionUnpaid, SubscriptionPaymentFailed, illegal},
	{SubscriptionUnpaid, SubscriptionRecover, "active"},
	{SubscriptionUnpaid, SubscriptionSuspend, illegal},
	{SubscriptionUnpaid, SubscriptionDunningCancel, illegal},
	{SubscriptionUnpaid, SubscriptionDunningMarkUnpaid, illegal},
	{SubscriptionUnpaid, SubscriptionPause, illegal},
	{SubscriptionUnpaid, SubscriptionResume, illegal},
	{SubscriptionUnpaid, SubscriptionCancel, "canceled"},

	{SubscriptionPaused, SubscriptionActivate, illegal},
	{SubscriptionPaused, SubscriptionExpireIncomplete, illegal},
	{SubscriptionPaused, SubscriptionPaymentFailed, illegal},
	{SubscriptionPaused, SubscriptionRecover, illegal},
	{SubscriptionPaused, SubscriptionSuspend, illegal},
	{SubscriptionPaused, SubscriptionDunningCancel, illegal},
	{SubscriptionPaused, SubscriptionDunningMarkUnpaid, illegal},
	{SubscriptionPaused, SubscriptionPause, illegal},
	{SubscriptionPaused, SubscriptionResume, "active"},
	{SubscriptionPaused, SubscriptionCancel, "canceled"},

	{SubscriptionCanceled, SubscriptionActivate, illegal},
	{SubscriptionCanceled, SubscriptionExpireIncomplete, illegal},
	{SubscriptionCanceled, SubscriptionPaymentFailed, illegal},
	{SubscriptionCanceled, SubscriptionRecover, illegal},
	{SubscriptionCanceled, SubscriptionSuspend, illegal},
	{SubscriptionCanceled, SubscriptionDunningCancel, illegal},
	{SubscriptionCanceled, SubscriptionDunningMarkUnpaid, illegal},
	{SubscriptionCanceled, SubscriptionPause, illegal},
	{SubscriptionCanceled, SubscriptionResume, illegal},
	{SubscriptionCanceled, SubscriptionCancel, illegal},
}

// Hand-written inventories, compared with the package's own lists, so a new
// constant that reaches the machine must also reach this file.
var (
	specInvoiceStatuses = []string{"draft", "open", "paid", "void", "uncollectible"}
	specInvoiceTriggers = []string{"finalize", "pay", "void", "mark_uncollectible"}
	specAttemptStatuses = []string{"pending", "succeeded", "declined", "unknown", "failed", "reversed"}
	specAttemptTriggers = []string{"succeed", "decline", "mark_unknown", "fail", "reverse"}
	specSubStatuses     = []string{
		"incomplete", "incomplete_expired", "trialing", "active", "past_due", "suspended", "unpaid", "paused", "canceled",
	}
	specSubTriggers = []string{
		"activate", "expire_incomplete", "payment_failed", "recover", "suspend", "dunning_cancel",
		"dunning_mark_unpaid", "pause", "resume", "cancel",
	}
)

func strs[S ~string](in []S) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}

// requireFullCoverage checks the spec rows are exactly the cross product of
// states and triggers: each pair present, none twice, none outside it.
func requireFullCoverage(t *testing.T, states, triggers []string, pairs [][2]string) {
	t.Helper()
	seen := map[[2]string]int{}
	for _, p := range pairs {
		seen[p]++
	}
	for _, s := range states {
		for _, tr := range triggers {
			require.Equal(t, 1, seen[[2]string{s, tr}], "spec must have exactly one row for (%s, %s)", s, tr)
			delete(seen, [2]string{s, tr})
		}
	}
	require.Empty(t, seen, "spec rows outside the cross product")
}

func TestSpecCoversEveryPair(t *testing.T) {
	t.Parallel()

	require.ElementsMatch(t, specInvoiceStatuses, strs(InvoiceStatuses()))
	require.ElementsMatch(t, specInvoiceTriggers, strs(InvoiceTriggers()))
	require.ElementsMatch(t, specAttemptStatuses, strs(AttemptStatuses()))
	require.ElementsMatch(t, specAttemptTriggers, strs(AttemptTriggers()))
	require.ElementsMatch(t, specSubStatuses, strs(SubscriptionStatuses()))
	require.ElementsMatch(t, specSubTriggers, strs(SubscriptionTriggers()))

	// Guarded invoice pairs have one row per guard outcome; count them once
	// here and check both outcomes are present.
	var invoicePairs [][2]string
	guarded := map[[2]string][]paid{}
	for _, c := range invoiceSpec {
		p := [2]string{string(c.from), string(c.trigger)}
		if c.paid == either {
			invoicePairs = append(invoicePairs, p)
			continue
		}
		if len(guarded[p]) == 0 {
			invoicePairs = append(invoicePairs, p)
		}
		guarded[p] = append(guarded[p], c.paid)
	}
	for p, outcomes := range guarded {
		require.ElementsMatch(t, []paid{zeroPaid, somePaid}, outcomes, "guarded pair %v needs both outcomes", p)
	}
	requireFullCoverage(t, specInvoiceStatuses, specInvoiceTriggers, invoicePairs)

	var attemptPairs [][2]string
	for _, c := range attemptSpec {
		attemptPairs = append(attemptPairs, [2]string{string(c.from), string(c.trigger)})
	}
	requireFullCoverage(t, specAttemptStatuses, specAttemptTriggers, attemptPairs)

	var subPairs [][2]string
	for _, c := range subscriptionSpec {
		subPairs = append(subPairs, [2]string{string(c.from), string(c.trigger)})
	}
	requireFullCoverage(t, specSubStatuses, specSubTriggers, subPairs)
}

// requireOutcome checks one fire against the spec and that the allowed list
// agrees with it (a trigger is listed iff firing it succeeds).
func requireOutcome[S ~string, T ~string](t *testing.T, from S, trigger T, want string, got S, err error, allowed []T) {
	t.Helper()
	if want == illegal {
		var ite *IllegalTransitionError
		require.ErrorAs(t, err, &ite)
		require.ErrorIs(t, err, ErrIllegalTransition)
		require.Equal(t, string(from), ite.State)
		require.Equal(t, string(trigger), ite.Trigger)
		require.Equal(t, strs(allowed), ite.Allowed)
		require.Equal(t, from, got, "a refused fire must leave the status unchanged")
		require.NotContains(t, allowed, trigger)
		return
	}
	require.NoError(t, err)
	require.Equal(t, want, string(got))
	require.Contains(t, allowed, trigger)
}

func TestInvoiceSpec(t *testing.T) {
	t.Parallel()
	for _, c := range invoiceSpec {
		facts := map[paid][]InvoiceFacts{
			either:   {{AmountPaidIsZero: true}, {AmountPaidIsZero: false}},
			zeroPaid: {{AmountPaidIsZero: true}},
			somePaid: {{AmountPaidIsZero: false}},
		}[c.paid]
		for _, f := range facts {
			t.Run(fmt.Sprintf("%s/%s/paid_is_zero=%t", c.from, c.trigger, f.AmountPaidIsZero), func(t *testing.T) {
				t.Parallel()
				got, err := FireInvoice(context.Background(), c.from, c.trigger, f)
				requireOutcome(t, c.from, c.trigger, c.want, got, err, AllowedInvoiceTriggers(c.from, f))
			})
		}
	}
}

func TestAttemptSpec(t *testing.T) {
	t.Parallel()
	for _, c := range attemptSpec {
		t.Run(fmt.Sprintf("%s/%s", c.from, c.trigger), func(t *testing.T) {
			t.Parallel()
			got, err := FireAttempt(context.Background(), c.from, c.trigger)
			requireOutcome(t, c.from, c.trigger, c.want, got, err, AllowedAttemptTriggers(c.from))
		})
	}
}

func TestSubscriptionSpec(t *testing.T) {
	t.Parallel()
	for _, c := range subscriptionSpec {
		t.Run(fmt.Sprintf("%s/%s", c.from, c.trigger), func(t *testing.T) {
			t.Parallel()
			got, err := FireSubscription(context.Background(), c.from, c.trigger)
			requireOutcome(t, c.from, c.trigger, c.want, got, err, AllowedSubscriptionTriggers(c.from))
		})
	}
}

func TestUnknownStateIsNotAnIllegalTransition(t *testing.T) {
	t.Parallel()

	got, err := FireInvoice(context.Background(), "settled", InvoicePay, InvoiceFacts{})
	require.ErrorIs(t, err, ErrUnknownState)
	require.NotErrorIs(t, err, ErrIllegalTransition)
	require.Equal(t, InvoiceStatus("settled"), got)
	require.Nil(t, AllowedInvoiceTriggers("settled", InvoiceFacts{}))

	_, err = FireAttempt(context.Background(), "", AttemptSucceed)
	require.ErrorIs(t, err, ErrUnknownState)
	_, err = FireSubscription(context.Background(), "Active", SubscriptionCancel)
	require.ErrorIs(t, err, ErrUnknownState)

	// An unknown state must not have been added to the shared configuration.
	require.NotContains(t, Graphs()[MachineInvoice], "settled")
}

func TestUnknownTriggerIsIllegal(t *testing.T) {
	t.Parallel()

	_, err := FireSubscription(context.Background(), SubscriptionActive, "upgrade")
	var ite *IllegalTransitionError
	require.ErrorAs(t, err, &ite)
	require.Equal(t, "upgrade", ite.Trigger)
	require.Equal(t, []string{"cancel", "pause", "payment_failed"}, ite.Allowed)
}

func TestAllowedListsAreSortedAndNeverNilForKnownStates(t *testing.T) {
	t.Parallel()

	require.Equal(t, []InvoiceTrigger{InvoiceMarkUncollectible, InvoicePay, InvoiceVoid},
		AllowedInvoiceTriggers(InvoiceOpen, InvoiceFacts{AmountPaidIsZero: true}))
	require.Equal(t, []InvoiceTrigger{InvoiceMarkUncollectible, InvoicePay},
		AllowedInvoiceTriggers(InvoiceOpen, InvoiceFacts{}))
	require.Equal(t, []AttemptTrigger{AttemptDecline, AttemptFail, AttemptMarkUnknown, AttemptSucceed},
		AllowedAttemptTriggers(AttemptPending))
	require.Equal(t, []SubscriptionTrigger{
		SubscriptionCancel, SubscriptionDunningCancel, SubscriptionDunningMarkUnpaid, SubscriptionRecover, SubscriptionSuspend,
	}, AllowedSubscriptionTriggers(SubscriptionPastDue))

	for _, s := range InvoiceStatuses() {
		require.NotNil(t, AllowedInvoiceTriggers(s, InvoiceFacts{}), s)
	}
	for _, s := range AttemptStatuses() {
		require.NotNil(t, AllowedAttemptTriggers(s), s)
	}
	for _, s := range SubscriptionStatuses() {
		require.NotNil(t, AllowedSubscriptionTriggers(s), s)
	}
	require.Empty(t, AllowedSubscriptionTriggers(SubscriptionCanceled))
}

// The machines are shared package state; many goroutines firing at once
// (run with -race) must each see only their own entity.
func TestConcurrentFiresAreIndependent(t *testing.T) {
	t.Parallel()

	const n = 64
	errs := make(chan error, 2*n)
	for i := range n {
		go func() {
			// Alternate guard outcomes so a leaked cell would show up as a
			// wrong result, not just a race report.
			f := InvoiceFacts{AmountPaidIsZero: i%2 == 0}
			got, err := FireInvoice(context.Background(), InvoiceOpen, InvoiceVoid, f)
			switch {
			case f.AmountPaidIsZero && (err != nil || got != InvoiceVoided):
				errs <- fmt.Errorf("zero paid: got %s, %v", got, err)
			case !f.AmountPaidIsZero && !errors.Is(err, ErrIllegalTransition):
				errs <- fmt.Errorf("some paid: got %s, %v", got, err)
			default:
				errs <- nil
			}
		}()
		go func() {
			from := []SubscriptionStatus{SubscriptionPastDue, SubscriptionSuspended, SubscriptionUnpaid}[i%3]
			got, err := FireSubscription(context.Background(), from, SubscriptionRecover)
			if err != nil || got != SubscriptionActive {
				errs <- fmt.Errorf("recover from %s: got %s, %v", from, got, err)
				return
			}
			errs <- nil
		}()
	}
	for range 2 * n {
		require.NoError(t, <-errs)
	}
}
