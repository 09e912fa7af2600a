package statemachine_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/dunningworks/billing/statemachine"
)

// A caller loads the row (inside its transaction), fires, and writes the new
// status back with a compare-and-set on the old one.
func ExampleFireInvoice() {
	ctx := context.Background()
	loaded := statemachine.InvoiceOpen
	facts := statemachine.InvoiceFacts{AmountPaidIsZero: false} // from invoices.amount_paid

	next, err := statemachine.FireInvoice(ctx, loaded, statemachine.InvoicePay, facts)
	fmt.Println(next, err)
	// UPDATE invoices SET status = next WHERE id = $1 AND status = loaded

	_, err = statemachine.FireInvoice(ctx, loaded, statemachine.InvoiceVoid, facts)
	var ite *statemachine.IllegalTransitionError
	if errors.As(err, &ite) {
		fmt.Println(ite.State, ite.Allowed) // the REST layer's 409 detail and allowed
	}
	// Output:
	// paid <nil>
	// open [mark_uncollectible pay]
}

func ExampleEntitled() {
	fmt.Println(statemachine.Entitled(statemachine.SubscriptionPastDue))
	fmt.Println(statemachine.Entitled(statemachine.SubscriptionSuspended))
	// Output:
	// true
	// false
}
