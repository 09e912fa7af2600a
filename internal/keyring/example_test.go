package keyring_test

import (
	"bytes"
	"fmt"

	"github.com/dunningworks/billing/internal/keyring"
)

// A ciphertext opens only with the binding (the row) it was sealed for; adding a key version keeps old
// rows readable while new ones are sealed under it.
func ExampleRing() {
	v1 := bytes.Repeat([]byte{1}, keyring.KeySize) // in production: BILLING_ENCRYPTION_KEYS
	ring, _ := keyring.New(map[int][]byte{1: v1})

	ct, version, _ := ring.Seal([]byte("toss-billing-key"), "billing_key", "bk_1", "cus_1")
	pt, _ := ring.Open(ct, version, "billing_key", "bk_1", "cus_1")
	fmt.Println(string(pt), version)

	_, err := ring.Open(ct, version, "billing_key", "bk_1", "cus_2")
	fmt.Println(err)

	rotated, _ := keyring.New(map[int][]byte{1: v1, 2: bytes.Repeat([]byte{2}, keyring.KeySize)})
	pt, _ = rotated.Open(ct, version, "billing_key", "bk_1", "cus_1")
	fmt.Println(string(pt), rotated.Current())
	fmt.Println(rotated)
	// Output:
	// toss-billing-key 1
	// keyring: ciphertext does not authenticate
	// toss-billing-key 2
	// Ring{versions: [1 2], current: 2, keys: [REDACTED]}
}
