package gateway_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/gateway"
)

func TestCardLabel(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		card gateway.Card
		want string
	}{
		{gateway.Card{Brand: "Visa", MaskedNumber: "**** **** **** 4242"}, "Visa •••• 4242"}, // Stripe
		{gateway.Card{Brand: "신한", MaskedNumber: "4330-12**-****-123*"}, "신한 •••• 123•"},     // Toss
		{gateway.Card{Brand: "VISA", MaskedNumber: "424242*******242"}, "VISA •••• •242"},    // pgsim's page
		{gateway.Card{Brand: "VISA", MaskedNumber: ""}, "VISA"},                              // no number
		{gateway.Card{Brand: "", MaskedNumber: "433012******123*"}, "•••• 123•"},             // no brand
		{gateway.Card{}, ""},
	} {
		require.Equal(t, c.want, c.card.Label(), "%+v", c.card)
	}
}
