package portal

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dunningworks/billing/clock"
)

// customerKeyPurpose derives the gateway customerKeys the customer page registers cards under.
const customerKeyPurpose = "customer page gateway customer keys"

// linkPurpose separates the link keys from every other use of the same key ring (keyring.Ring.MAC).
const linkPurpose = "customer page links"

// tokenFormat is the first byte of every token, so the format can change without misreading old links.
const tokenFormat = 1

// maxCustomerID bounds what a token may name; ids are far shorter.
const maxCustomerID = 128

var (
	// ErrLinkInvalid means a token is not one we signed (altered, truncated, or signed under a key the
	// service no longer holds). It names no customer.
	ErrLinkInvalid = errors.New("portal: the link is not valid")
	// ErrLinkExpired means the token is ours and names a customer, but its time is over.
	ErrLinkExpired = errors.New("portal: the link has expired")
)

// MACer signs bytes under a versioned key for one purpose; *keyring.Ring implements it (the derived keys
// never leave the ring, so the signer holds nothing printable).
type MACer interface {
	MAC(purpose string, version int, msg []byte) ([]byte, error)
	Current() int
}

// Signer makes and checks the customer-page links: base64url(format, key version, expiry, customer id)
// "." base64url(HMAC-SHA256 of that). The key version lets keys rotate: a link signed under an older
// version verifies while the ring still holds it.
type Signer struct {
	keys  MACer
	base  string // BILLING_PUBLIC_URL
	ttl   time.Duration
	clock clock.Clock
}

// NewSigner builds a signer. publicURL is BILLING_PUBLIC_URL (links are publicURL + "/c/" + token); ttl is
// how long a link opens the page; time is the domain clock (under the test clock, links expire in test
// time, as the dunning they belong to does).
func NewSigner(keys MACer, publicURL string, ttl time.Duration, c clock.Clock) *Signer {
	if keys == nil || c == nil || ttl <= 0 {
		panic("portal.NewSigner: keys, a clock and a positive ttl are required")
	}
	return &Signer{keys: keys, base: strings.TrimRight(publicURL, "/"), ttl: ttl, clock: c}
}

// TTL is how long a new link lasts.
func (s *Signer) TTL() time.Duration { return s.ttl }

// CustomerPage is the absolute URL of the customer's page, valid for the signer's TTL from now. It is
// what emails link to (mail.Links).
func (s *Signer) CustomerPage(_ context.Context, customerID string) (string, error) {
	tok, err := s.Token(customerID)
	if err != nil {
		return "", err
	}
	return s.base + "/c/" + tok, nil
}

// PageURL is the page's URL for an existing token (the page links to itself and to its sub-pages).
func (s *Signer) PageURL(token string) string { return s.base + "/c/" + token }

// Token signs a link token for the customer, expiring TTL from now.
func (s *Signer) Token(customerID string) (string, error) {
	return s.tokenUntil(customerID, s.clock.Now().Add(s.ttl))
}

func (s *Signer) tokenUntil(customerID string, until time.Time) (string, error) {
	if customerID == "" || len(customerID) > maxCustomerID {
		return "", fmt.Errorf("portal: cannot sign a link for customer id %q", customerID)
	}
	v := s.keys.Current()
	payload := []byte{tokenFormat}
	payload = binary.AppendUvarint(payload, uint64(v))
	payload = binary.AppendUvarint(payload, uint64(until.Unix()))
	payload = append(payload, customerID...)
	mac, err := s.keys.MAC(linkPurpose, v, payload)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(mac), nil
}

// Link is what a verified token says.
type Link struct {
	CustomerID string
	ExpiresAt  time.Time
	// version is the key version the token was signed under (its gateway customerKey is derived under it).
	version int
}

// Verify checks a token. A token we did not sign (or cannot check any more) is ErrLinkInvalid and names
// nobody; a token we signed whose time is over is ErrLinkExpired with its Link, so the expired page can
// offer that customer a fresh link by email.
func (s *Signer) Verify(token string) (Link, error) {
	p64, m64, ok := strings.Cut(token, ".")
	if !ok || len(token) > 512 {
		return Link{}, ErrLinkInvalid
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	mac, err2 := base64.RawURLEncoding.DecodeString(m64)
	if err1 != nil || err2 != nil || len(payload) < 1 || payload[0] != tokenFormat {
		return Link{}, ErrLinkInvalid
	}
	rest := payload[1:]
	v, n := binary.Uvarint(rest)
	if n <= 0 || v == 0 || v > 1<<20 {
		return Link{}, ErrLinkInvalid
	}
	rest = rest[n:]
	exp, n := binary.Uvarint(rest)
	if n <= 0 || exp > 1<<40 {
		return Link{}, ErrLinkInvalid
	}
	id := rest[n:]
	want, err := s.keys.MAC(linkPurpose, int(v), payload)
	if err != nil || !hmac.Equal(mac, want) {
		return Link{}, ErrLinkInvalid
	}
	if len(id) == 0 || len(id) > maxCustomerID || bytes.ContainsAny(id, "\x00/") {
		return Link{}, ErrLinkInvalid
	}
	l := Link{CustomerID: string(id), ExpiresAt: time.Unix(int64(exp), 0).UTC(), version: int(v)}
	if !s.clock.Now().Before(l.ExpiresAt) {
		return l, ErrLinkExpired
	}
	return l, nil
}

// CustomerKey is the gateway customerKey the customer page registers a card under for the link's customer:
// "cpk_" and 32 characters of an HMAC of the customer id under the key version the link was signed with.
// Toss binds the authKey of a registration to its customerKey, and the page's success URL issues a billing
// key only when the customerKey the gateway sends back is this one, so a redirect forged with another
// customer's customerKey (or an authKey made for one) cannot attach a card through this link. It fits
// Toss's rule (2-50 characters of A-Z a-z 0-9 - _ = . @) and says nothing about the customer.
func (s *Signer) CustomerKey(l Link) (string, error) {
	v := l.version
	if v == 0 {
		v = s.keys.Current()
	}
	mac, err := s.keys.MAC(customerKeyPurpose, v, []byte(l.CustomerID))
	if err != nil {
		return "", err
	}
	return "cpk_" + base64.RawURLEncoding.EncodeToString(mac)[:32], nil
}
