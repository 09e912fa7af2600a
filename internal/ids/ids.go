// Package ids makes the opaque, type-prefixed identifiers of API.md (cus_, bk_, plan_, sub_, inv_, pay_,
// evt_, ...): the prefix says what a thing is in logs and support tickets, the rest is 100 random bits.
package ids

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

var enc = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// New returns prefix + "_" + 20 random base32 characters.
func New(prefix string) string {
	b := make([]byte, 13)
	if _, err := rand.Read(b); err != nil {
		panic("ids: crypto/rand failed: " + err.Error())
	}
	return prefix + "_" + enc.EncodeToString(b)[:20]
}

// HasPrefix reports whether id looks like one of prefix's ids.
func HasPrefix(id, prefix string) bool {
	return strings.HasPrefix(id, prefix+"_") && len(id) > len(prefix)+1
}
