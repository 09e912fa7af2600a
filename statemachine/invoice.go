package statemachine

import (
	"context"

	"github.com/qmuntal/stateless"
)

// InvoiceStatus is an invoice's lifecycle state as stored in invoices.status
// and returned by the API.
type InvoiceStatus string

const (
	InvoiceDraft         InvoiceStatus = "draft"
	InvoiceOpen          InvoiceStatus = "open"
	InvoicePaid          InvoiceStatus = "paid"
	InvoiceVoided        InvoiceStatus = "void"
	InvoiceUncollectible InvoiceStatus = "uncollectible"
)

// InvoiceTrigger is an event that moves an invoice between statuses.
type InvoiceTrigger string

const (
	// InvoiceFinalize fixes the amount; the receivable is posted with it.
	InvoiceFinalize InvoiceTrigger = "finalize"
	// InvoicePay records full payment, also late or offline payment of an
	// uncollectible invoice.
	InvoicePay InvoiceTrigger = "pay"
	// InvoiceVoid cancels the invoice; from open only while nothing
	// was collected (money collected must be refunded, not voided away).
	InvoiceVoid InvoiceTrigger = "void"
	// InvoiceMarkUncollectible is dunning's last word on the invoice.
	InvoiceMarkUncollectible InvoiceTrigger = "mark_uncollectible"
)

// InvoiceFacts carries what the invoice guards need from the loaded row. The
// zero value is the safe one: AmountPaidIsZero false refuses void on an open
// invoice, so forgetting to fill it in cannot void a paid-into invoice.
type InvoiceFacts struct {
	AmountPaidIsZero bool
}

var invoiceMachine = newMachine[InvoiceStatus, InvoiceTrigger, InvoiceFacts](
	MachineInvoice,
	[]InvoiceStatus{InvoiceDraft, InvoiceOpen, InvoicePaid, InvoiceVoided, InvoiceUncollectible},
	[]InvoiceTrigger{InvoiceFinalize, InvoicePay, InvoiceVoid, InvoiceMarkUncollectible},
	map[string]string{
		"amountPaidIsZero": "money has been collected on this invoice (guard amountPaidIsZero); refund it instead of voiding",
	},
	configureInvoice,
)

func configureInvoice(sm *stateless.StateMachine) {
	sm.Configure(InvoiceDraft).
		Permit(InvoiceFinalize, InvoiceOpen).
		Permit(InvoiceVoid, InvoiceVoided)
	sm.Configure(InvoiceOpen).
		Permit(InvoicePay, InvoicePaid).
		Permit(InvoiceVoid, InvoiceVoided, amountPaidIsZero).
		Permit(InvoiceMarkUncollectible, InvoiceUncollectible)
	sm.Configure(InvoiceUncollectible).
		Permit(InvoicePay, InvoicePaid)
	// paid and void are terminal.
}

// amountPaidIsZero is named (not a closure) because stateless labels guards
// with the function name, in the graph and in unmet-guard reports.
func amountPaidIsZero(ctx context.Context, _ ...any) bool {
	c, ok := cellFrom[InvoiceStatus, InvoiceFacts](ctx)
	return ok && c.facts.AmountPaidIsZero
}

// FireInvoice applies trigger to an invoice in status current and returns the
// new status, which the caller persists in the same transaction with a
// compare-and-set on current. On error the returned status is current. An
// illegal or guard-refused trigger yields an *IllegalTransitionError; a
// status that is not an invoice status yields an error wrapping
// ErrUnknownState.
func FireInvoice(ctx context.Context, current InvoiceStatus, trigger InvoiceTrigger, facts InvoiceFacts) (InvoiceStatus, error) {
	return invoiceMachine.fire(ctx, current, trigger, facts)
}

// AllowedInvoiceTriggers lists, sorted, the triggers FireInvoice would accept
// from current with these facts; empty (not nil) for terminal statuses, nil
// for an unknown status.
func AllowedInvoiceTriggers(current InvoiceStatus, facts InvoiceFacts) []InvoiceTrigger {
	return invoiceMachine.allowed(current, facts)
}

// InvoiceStatuses returns every invoice status, e.g. for an OpenAPI enum or a
// CHECK constraint test.
func InvoiceStatuses() []InvoiceStatus { return append([]InvoiceStatus(nil), invoiceMachine.states...) }

// InvoiceTriggers returns every invoice trigger.
func InvoiceTriggers() []InvoiceTrigger {
	return append([]InvoiceTrigger(nil), invoiceMachine.triggers...)
}
