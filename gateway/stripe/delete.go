package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	sg "github.com/stripe/stripe-go/v82"

	"github.com/dunningworks/billing/gateway"
)

// DeleteBillingKey detaches the key's PaymentMethod from its Customer (POST
// /v1/payment_methods/{id}/detach): a detached PaymentMethod can never be charged again, by us or with the
// customer id. The Customer is left alone (it may hold the customer's other cards). A PaymentMethod that is
// gone (resource_missing) or no longer attached (payment_method_unexpected_state) counts as done; our key
// refused is a *gateway.MerchantError, a 429 try-later, anything else an error to retry.
func (a *Adapter) DeleteBillingKey(ctx context.Context, key gateway.BillingKeyToken, _ string) error {
	_, pm, err := parseToken(key)
	if err != nil {
		return err
	}
	ctx, cancel := a.callContext(ctx)
	defer cancel()
	_, err = a.client.V1PaymentMethods.Detach(ctx, pm, &sg.PaymentMethodDetachParams{})
	if err == nil {
		return nil
	}
	var se *sg.Error
	if errors.As(err, &se) {
		switch {
		case se.Code == sg.ErrorCodeResourceMissing, se.Code == sg.ErrorCodePaymentMethodUnexpectedState:
			return nil
		case se.HTTPStatusCode == http.StatusTooManyRequests:
			return tryLater(se)
		case merchantSide(se):
			return &gateway.MerchantError{Gateway: Name, Status: se.HTTPStatusCode, Code: codeOr(string(se.Code), string(se.Type)), Message: se.Msg}
		}
	}
	return fmt.Errorf("stripe: detach payment method: %w", err)
}
