package keyring_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/internal/keyring"
)

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, keyring.KeySize)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

func TestKeyRingRoundTrip(t *testing.T) {
	t.Parallel()
	ring, err := keyring.New(map[int][]byte{1: randomKey(t)})
	require.NoError(t, err)

	ct, v, err := ring.Seal([]byte("bk_token_123"), "billing_key", "bk_1", "cus_1")
	require.NoError(t, err)
	require.Equal(t, 1, v)
	require.NotContains(t, string(ct), "bk_token_123")

	pt, err := ring.Open(ct, v, "billing_key", "bk_1", "cus_1")
	require.NoError(t, err)
	require.Equal(t, "bk_token_123", string(pt))

	// A fresh nonce per seal: the same plaintext never yields the same ciphertext.
	ct2, _, err := ring.Seal([]byte("bk_token_123"), "billing_key", "bk_1", "cus_1")
	require.NoError(t, err)
	require.NotEqual(t, ct, ct2)
	require.NotEqual(t, ct[:12], ct2[:12])
}

func TestKeyRingRejectsTampering(t *testing.T) {
	t.Parallel()
	ring, err := keyring.New(map[int][]byte{1: randomKey(t)})
	require.NoError(t, err)
	ct, v, err := ring.Seal([]byte("secret-token"), "billing_key", "bk_1", "cus_1")
	require.NoError(t, err)

	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		_, err := ring.Open(bad, v, "billing_key", "bk_1", "cus_1")
		require.ErrorIs(t, err, keyring.ErrDecrypt, "flipped byte %d", i)
	}
	_, err = ring.Open(ct[:len(ct)-1], v, "billing_key", "bk_1", "cus_1")
	require.ErrorIs(t, err, keyring.ErrDecrypt)
	_, err = ring.Open(ct[:5], v, "billing_key", "bk_1", "cus_1")
	require.ErrorIs(t, err, keyring.ErrDecrypt)

	cases := map[string][]string{
		"another customer's row": {"billing_key", "bk_1", "cus_2"},
		"another key id":         {"billing_key", "bk_2", "cus_1"},
		"another table":          {"webhook_endpoint", "bk_1", "cus_1"},
		"parts shifted":          {"billing_key", "bk_1cus_1"},
		"separator smuggled":     {"billing_key|bk_1", "cus_1"},
		"missing part":           {"billing_key", "bk_1"},
	}
	for name, binding := range cases {
		_, err := ring.Open(ct, v, binding...)
		require.ErrorIs(t, err, keyring.ErrDecrypt, name)
	}
}

func TestKeyRingVersionIsBound(t *testing.T) {
	t.Parallel()
	k := randomKey(t)
	// The same key bytes under two versions: a row relabeled to another version must still fail, because
	// the version is part of the additional data.
	ring, err := keyring.New(map[int][]byte{1: k, 2: k})
	require.NoError(t, err)
	ct, v, err := ring.Seal([]byte("tok"), "billing_key", "bk_1", "cus_1")
	require.NoError(t, err)
	require.Equal(t, 2, v)
	_, err = ring.Open(ct, 1, "billing_key", "bk_1", "cus_1")
	require.ErrorIs(t, err, keyring.ErrDecrypt)
	_, err = ring.Open(ct, 7, "billing_key", "bk_1", "cus_1")
	require.ErrorIs(t, err, keyring.ErrUnknownKeyVersion)
}

func TestKeyRingOldVersionStillDecrypts(t *testing.T) {
	t.Parallel()
	k1, k2 := randomKey(t), randomKey(t)
	old, err := keyring.New(map[int][]byte{1: k1})
	require.NoError(t, err)
	ct, v, err := old.Seal([]byte("tok-v1"), "billing_key", "bk_1", "cus_1")
	require.NoError(t, err)

	ring, err := keyring.New(map[int][]byte{1: k1, 2: k2})
	require.NoError(t, err)
	require.Equal(t, 2, ring.Current())
	require.Equal(t, []int{1, 2}, ring.Versions())
	pt, err := ring.Open(ct, v, "billing_key", "bk_1", "cus_1")
	require.NoError(t, err)
	require.Equal(t, "tok-v1", string(pt))

	ct2, v2, err := ring.Seal([]byte("tok-v2"), "billing_key", "bk_2", "cus_1")
	require.NoError(t, err)
	require.Equal(t, 2, v2)
	_, err = old.Open(ct2, v2, "billing_key", "bk_2", "cus_1")
	require.ErrorIs(t, err, keyring.ErrUnknownKeyVersion)
}

func TestNewKeyRingValidates(t *testing.T) {
	t.Parallel()
	_, err := keyring.New(nil)
	require.Error(t, err)
	_, err = keyring.New(map[int][]byte{1: make([]byte, 16)})
	require.ErrorContains(t, err, "16 bytes")
	_, err = keyring.New(map[int][]byte{0: randomKey(t)})
	require.Error(t, err)

	// The ring copies the key: wiping the caller's bytes does not break it.
	k := randomKey(t)
	ring, err := keyring.New(map[int][]byte{1: k})
	require.NoError(t, err)
	ct, v, err := ring.Seal([]byte("x"), "a")
	require.NoError(t, err)
	clear(k)
	_, err = ring.Open(ct, v, "a")
	require.NoError(t, err)
}

func TestDevKeyRingIsStable(t *testing.T) {
	t.Parallel()
	ct, v, err := keyring.Dev().Seal([]byte("tok"), "billing_key", "bk_1", "cus_1")
	require.NoError(t, err)
	require.Equal(t, 1, v)
	// A second process (a restart) derives the same key and can read what the first wrote.
	pt, err := keyring.Dev().Open(ct, v, "billing_key", "bk_1", "cus_1")
	require.NoError(t, err)
	require.Equal(t, "tok", string(pt))
}

func TestKeyRingNeverPrintsKeyMaterial(t *testing.T) {
	t.Parallel()
	k := bytes.Repeat([]byte{0xAB}, keyring.KeySize)
	ring, err := keyring.New(map[int][]byte{3: k})
	require.NoError(t, err)

	// Every encoding of the key an output path could produce.
	forms := []string{string(k), hex.EncodeToString(k), strings.ToUpper(hex.EncodeToString(k)),
		base64.StdEncoding.EncodeToString(k), "171 171 171", "[171", "0xab", "ab ab", "abab"}

	holder := struct {
		Ring    keyring.Ring
		RingPtr *keyring.Ring
	}{*ring, ring}

	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		outs = append(outs, fmt.Sprintf(verb, ring), fmt.Sprintf(verb, *ring), fmt.Sprintf(verb, holder))
	}
	js, err := json.Marshal(holder)
	require.NoError(t, err)
	outs = append(outs, string(js))

	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&logs, nil), slog.NewTextHandler(&logs, nil)} {
		l := slog.New(h)
		l.Info("ring", "ring", ring, "value", *ring, "holder", holder)
	}
	outs = append(outs, logs.String())

	for _, out := range outs {
		for _, f := range forms {
			require.NotContains(t, strings.ToLower(out), strings.ToLower(f), "output leaks key material: %s", out)
		}
	}
	require.Contains(t, fmt.Sprintf("%v", ring), "[REDACTED]")
	require.Contains(t, fmt.Sprintf("%v", ring), "current: 3")
	require.Contains(t, string(js), "[REDACTED]")
	require.Contains(t, logs.String(), "[REDACTED]")
}
