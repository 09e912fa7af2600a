package portal_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/keyring"
	"github.com/dunningworks/billing/portal"
)

var signerStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type signerBundle struct {
	clock  *clock.Fixed
	signer *portal.Signer
	ring   *keyring.Ring
}

func setupSigner(t *testing.T) signerBundle {
	t.Helper()
	ring, err := keyring.New(map[int][]byte{1: bytes.Repeat([]byte{7}, keyring.KeySize)})
	require.NoError(t, err)
	c := clock.NewFixed(signerStart)
	return signerBundle{clock: c, ring: ring, signer: portal.NewSigner(ring, "https://billing.example.com/", 72*time.Hour, c)}
}

func TestSignerLinkOpensForItsCustomerUntilItExpires(t *testing.T) {
	t.Parallel()
	b := setupSigner(t)

	u, err := b.signer.CustomerPage(context.Background(), "cus_alice")
	require.NoError(t, err)
	tok, ok := strings.CutPrefix(u, "https://billing.example.com/c/")
	require.True(t, ok, u)
	require.NotContains(t, tok, "/")

	l, err := b.signer.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, "cus_alice", l.CustomerID)
	require.Equal(t, signerStart.Add(72*time.Hour), l.ExpiresAt)

	b.clock.Advance(72*time.Hour - time.Second)
	_, err = b.signer.Verify(tok)
	require.NoError(t, err)

	b.clock.Advance(time.Second)
	l, err = b.signer.Verify(tok)
	require.ErrorIs(t, err, portal.ErrLinkExpired)
	require.Equal(t, "cus_alice", l.CustomerID, "an expired link still says whose it was, for a fresh one by email")
}

func TestSignerRefusesEveryAlteration(t *testing.T) {
	t.Parallel()
	b := setupSigner(t)
	tok, err := b.signer.Token("cus_alice")
	require.NoError(t, err)
	other, err := b.signer.Token("cus_bob")
	require.NoError(t, err)
	p64, m64, _ := strings.Cut(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(p64)

	// Every single-bit change of the payload, and of the MAC, is refused.
	for i := range payload {
		for bit := range 8 {
			p := bytes.Clone(payload)
			p[i] ^= 1 << bit
			_, err := b.signer.Verify(base64.RawURLEncoding.EncodeToString(p) + "." + m64)
			require.ErrorIs(t, err, portal.ErrLinkInvalid, "byte %d bit %d", i, bit)
		}
	}
	mac, _ := base64.RawURLEncoding.DecodeString(m64)
	for i := range mac {
		m := bytes.Clone(mac)
		m[i] ^= 0x80
		_, err := b.signer.Verify(p64 + "." + base64.RawURLEncoding.EncodeToString(m))
		require.ErrorIs(t, err, portal.ErrLinkInvalid)
	}

	// Another customer's id with this customer's MAC, a MAC moved between tokens, a longer expiry, junk.
	swapped := strings.Replace(string(payload), "cus_alice", "cus_bob__", 1)
	_, om64, _ := strings.Cut(other, ".")
	extended := bytes.Clone(payload)
	extended[2]++
	for _, bad := range []string{
		base64.RawURLEncoding.EncodeToString([]byte(swapped)) + "." + m64,
		p64 + "." + om64,
		base64.RawURLEncoding.EncodeToString(extended) + "." + m64,
		p64, p64 + ".", "." + m64, "", "x.y", tok + "x", tok[:len(tok)-1], strings.Repeat("A", 600) + "." + m64,
	} {
		l, err := b.signer.Verify(bad)
		require.ErrorIs(t, err, portal.ErrLinkInvalid, "%q", bad)
		require.Empty(t, l.CustomerID)
	}
}

func TestSignerKeysRotate(t *testing.T) {
	t.Parallel()
	b := setupSigner(t)
	old, err := b.signer.Token("cus_alice")
	require.NoError(t, err)

	rotated, err := keyring.New(map[int][]byte{1: bytes.Repeat([]byte{7}, keyring.KeySize), 2: bytes.Repeat([]byte{8}, keyring.KeySize)})
	require.NoError(t, err)
	s2 := portal.NewSigner(rotated, "https://billing.example.com", 72*time.Hour, b.clock)
	l, err := s2.Verify(old)
	require.NoError(t, err, "a link signed under version 1 opens while the ring holds version 1")
	require.Equal(t, "cus_alice", l.CustomerID)

	fresh, err := s2.Token("cus_alice")
	require.NoError(t, err)
	_, err = b.signer.Verify(fresh)
	require.ErrorIs(t, err, portal.ErrLinkInvalid, "a signer without version 2 cannot check its links")

	dropped, err := keyring.New(map[int][]byte{2: bytes.Repeat([]byte{8}, keyring.KeySize)})
	require.NoError(t, err)
	_, err = portal.NewSigner(dropped, "https://billing.example.com", time.Hour, b.clock).Verify(old)
	require.ErrorIs(t, err, portal.ErrLinkInvalid)
}

func TestSignerKeysAreNotTheEncryptionKeys(t *testing.T) {
	t.Parallel()
	b := setupSigner(t)
	// The link MAC is keyed by a key derived for links: the raw ring key gives another MAC, and the
	// signer prints nothing of its keys.
	m1, err := b.ring.MAC("customer page links", 1, []byte("x"))
	require.NoError(t, err)
	m2, err := b.ring.MAC("something else", 1, []byte("x"))
	require.NoError(t, err)
	require.NotEqual(t, m1, m2)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		out := fmt.Sprintf(verb, b.signer)
		require.NotContains(t, out, "\x07\x07\x07")
		require.NotContains(t, out, "0707070707")
	}
}

// The gateway customerKey of a link is its customer's alone: stable across that customer's links, another
// for another customer, and within Toss's customerKey rule.
func TestSignerCustomerKeyIsTheCustomers(t *testing.T) {
	t.Parallel()
	b := setupSigner(t)
	key := func(id string) string {
		tok, err := b.signer.Token(id)
		require.NoError(t, err)
		l, err := b.signer.Verify(tok)
		require.NoError(t, err)
		k, err := b.signer.CustomerKey(l)
		require.NoError(t, err)
		return k
	}
	alice := key("cus_alice")
	b.clock.Advance(time.Hour)
	require.Equal(t, alice, key("cus_alice"), "every link of a customer registers under the same customerKey")
	require.NotEqual(t, alice, key("cus_bob"))
	require.Regexp(t, `^cpk_[A-Za-z0-9_-]{32}$`, alice)
	require.NotContains(t, alice, "alice")
}
