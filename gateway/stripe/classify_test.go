package stripe_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/stripe"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	cases := []struct {
		code, advice string
		class        gateway.DeclineClass
		capped       bool
	}{
		// The design's table.
		{"lost_card", "", gateway.Hard, false},
		{"stolen_card", "", gateway.Hard, false},
		{"pickup_card", "", gateway.Hard, false},
		{"fraudulent", "", gateway.Hard, false},
		{"revocation_of_authorization", "", gateway.Hard, false},
		{"do_not_try_again", "", gateway.Hard, false},
		{"expired_card", "", gateway.Hard, false},
		{"incorrect_number", "", gateway.Hard, false},
		{"insufficient_funds", "", gateway.Soft, false},
		{"try_again_later", "", gateway.Soft, false},
		{"processing_error", "", gateway.Soft, false},
		{"issuer_not_available", "", gateway.Soft, false},
		{"do_not_honor", "", gateway.Soft, true},
		{"generic_decline", "", gateway.Soft, true},
		// Additions.
		{"restricted_card", "", gateway.Hard, false},
		{"security_violation", "", gateway.Hard, false},
		{"invalid_account", "", gateway.Hard, false},
		{"card_not_supported", "", gateway.Hard, false},
		{"currency_not_supported", "", gateway.Hard, false},
		{"authentication_required", "", gateway.Hard, false},
		{"card_declined", "", gateway.Soft, true},
		{"a_code_stripe_adds_next_year", "", gateway.Soft, true},
		// advice_code wins.
		{"insufficient_funds", "do_not_try_again", gateway.Hard, false},
		{"generic_decline", "confirm_card_data", gateway.Hard, false},
		{"do_not_honor", "try_again_later", gateway.Soft, true},
		{"insufficient_funds", "try_again_later", gateway.Soft, false},
		{"stolen_card", "try_again_later", gateway.Soft, true},
		{"insufficient_funds", "advice_stripe_adds_next_year", gateway.Soft, false},
	}
	for _, tc := range cases {
		class, capped := stripe.Classify(tc.code, tc.advice)
		require.Equal(t, tc.class, class, "%s/%s", tc.code, tc.advice)
		require.Equal(t, tc.capped, capped, "capped %s/%s", tc.code, tc.advice)
	}
}
