package portal_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/keyring"
	"github.com/dunningworks/billing/portal"
)

// A link names one customer and expires; the page's handler verifies the token from the path.
func ExampleSigner() {
	ring, _ := keyring.New(map[int][]byte{1: bytes.Repeat([]byte{1}, keyring.KeySize)}) // BILLING_PORTAL_KEYS
	c := clock.NewFixed(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	signer := portal.NewSigner(ring, "https://billing.example.com", 30*24*time.Hour, c)

	url, _ := signer.CustomerPage(context.Background(), "cus_123")
	token := strings.TrimPrefix(url, "https://billing.example.com/c/")
	link, err := signer.Verify(token)
	fmt.Println(link.CustomerID, link.ExpiresAt, err)

	c.Advance(31 * 24 * time.Hour)
	_, err = signer.Verify(token)
	fmt.Println(err)
	// Another customer's id under this link's signature.
	other, _ := signer.Token("cus_999")
	otherPayload, _, _ := strings.Cut(other, ".")
	_, mac, _ := strings.Cut(token, ".")
	_, err = signer.Verify(otherPayload + "." + mac)
	fmt.Println(err)
	// Output:
	// cus_123 2026-04-01 09:00:00 +0000 UTC <nil>
	// portal: the link has expired
	// portal: the link is not valid
}
