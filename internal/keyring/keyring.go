package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
)

// KeySize is the size of an AES-256 key.
const KeySize = 32

const nonceSize = 12

// ErrDecrypt means a ciphertext did not authenticate: it was altered, belongs to another row, or was sealed
// under a different key. It deliberately says nothing more.
var ErrDecrypt = errors.New("keyring: ciphertext does not authenticate")

// ErrUnknownKeyVersion means a row names a key version the ring does not hold (a key was dropped from
// BILLING_ENCRYPTION_KEYS before its rows were rotated away from it).
var ErrUnknownKeyVersion = errors.New("keyring: unknown encryption key version")

// redacted is what every printing path of key material shows.
const redacted = "[REDACTED]"

// keyMaterial is one AES key. It never prints, marshals or logs, whatever verb or encoder is used.
type keyMaterial struct{ b []byte }

func (keyMaterial) String() string                { return redacted }
func (keyMaterial) GoString() string              { return redacted }
func (keyMaterial) MarshalJSON() ([]byte, error)  { return []byte(`"` + redacted + `"`), nil }
func (keyMaterial) MarshalText() ([]byte, error)  { return []byte(redacted), nil }
func (keyMaterial) LogValue() slog.Value          { return slog.StringValue(redacted) }
func (keyMaterial) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redacted)) }

// Ring holds the versioned AES-256 keys of BILLING_ENCRYPTION_KEYS. The highest version encrypts; every
// version decrypts, so adding a key never strands existing rows (Rotate then moves them to the new one).
//
// A Ring prints as its versions only: fmt cannot call the redacting methods of unexported fields, so
// the ring itself must not let fmt descend into them.
type Ring struct {
	aeads   map[int]cipher.AEAD
	keys    map[int]keyMaterial
	current int
}

// New builds a ring from version -> 32-byte key (config.Config.EncryptionKeys). The bytes are
// copied, so the caller may wipe its map.
func New(keys map[int][]byte) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("keyring: the key ring needs at least one key")
	}
	r := &Ring{aeads: map[int]cipher.AEAD{}, keys: map[int]keyMaterial{}}
	for v, k := range keys {
		if v < 1 {
			return nil, fmt.Errorf("keyring: key version %d: versions start at 1", v)
		}
		if len(k) != KeySize {
			return nil, fmt.Errorf("keyring: key version %d is %d bytes, want %d", v, len(k), KeySize)
		}
		m := keyMaterial{b: slices.Clone(k)}
		block, err := aes.NewCipher(m.b)
		if err != nil {
			return nil, fmt.Errorf("keyring: key version %d: %w", v, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("keyring: key version %d: %w", v, err)
		}
		r.aeads[v], r.keys[v] = aead, m
		r.current = max(r.current, v)
	}
	return r, nil
}

// devKeySeed names the fixed development key for what it is, so it cannot be mistaken for a real one in a
// config dump or a database shared by accident.
const devKeySeed = "dunningworks billing: INSECURE DEVELOPMENT KEY, version 1, never use outside dev mode"

// Dev is the ring dev mode uses when BILLING_ENCRYPTION_KEYS is empty: version 1 derived from a
// public constant. It only keeps tokens out of plain sight in a developer's database; it protects nothing.
func Dev() *Ring {
	k := sha256.Sum256([]byte(devKeySeed))
	r, err := New(map[int][]byte{1: k[:]})
	if err != nil {
		panic(err) // a constant 32-byte key cannot fail
	}
	return r
}

// TestKey is the key this repository's tests and dev tools pass in BILLING_ENCRYPTION_KEYS (base64 of
// "0123456789abcdef0123456789abcdef"). Like the development key it is public, so production refuses it.
const TestKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// IsPublic reports whether key is one anybody with this source code knows: the development key or
// TestKey. Sealing real billing keys under either protects nothing.
func IsPublic(key []byte) bool {
	dev := sha256.Sum256([]byte(devKeySeed))
	return string(key) == string(dev[:]) || string(key) == "0123456789abcdef0123456789abcdef"
}

// Current is the version new ciphertexts are sealed under.
func (r *Ring) Current() int { return r.current }

// Versions lists the versions the ring can decrypt, ascending.
func (r *Ring) Versions() []int {
	vs := make([]int, 0, len(r.keys))
	for v := range r.keys {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// Seal encrypts plaintext under the current key with a fresh random nonce and returns nonce||sealed and
// the version used. binding names the row the ciphertext belongs to (e.g. "billing_key", id, customer id);
// together with the version it is the GCM additional data, so Open succeeds only for the same row.
func (r *Ring) Seal(plaintext []byte, binding ...string) (ciphertext []byte, version int, err error) {
	v := r.current
	aead := r.aeads[v]
	nonce := make([]byte, nonceSize, nonceSize+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, 0, fmt.Errorf("keyring: nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plaintext, aad(v, binding)), v, nil
}

// Open decrypts a ciphertext sealed under version with the same binding.
func (r *Ring) Open(ciphertext []byte, version int, binding ...string) ([]byte, error) {
	aead, ok := r.aeads[version]
	if !ok {
		return nil, fmt.Errorf("%w: %d (the ring holds %v)", ErrUnknownKeyVersion, version, r.Versions())
	}
	if len(ciphertext) < nonceSize+aead.Overhead() {
		return nil, ErrDecrypt
	}
	pt, err := aead.Open(nil, ciphertext[:nonceSize], ciphertext[nonceSize:], aad(version, binding))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// aad length-prefixes every part, so ("a|b", "c") and ("a", "b|c") can never bind the same way whatever
// characters an id holds.
func aad(version int, binding []string) []byte {
	var b []byte
	for _, p := range append(slices.Clone(binding), "v"+strconv.Itoa(version)) {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

func (r Ring) describe() string {
	vs := r.Versions()
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.Itoa(v)
	}
	return "Ring{versions: [" + strings.Join(parts, " ") + "], current: " + strconv.Itoa(r.current) + ", keys: " + redacted + "}"
}

// String shows the versions, never the keys.
func (r Ring) String() string { return r.describe() }

// GoString shows the versions, never the keys, even with %#v.
func (r Ring) GoString() string { return r.describe() }

// Format covers every verb (%x, %d, %+v ...), which would otherwise reach the key bytes by reflection.
func (r Ring) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(r.describe())) }

// MarshalJSON shows the versions, never the keys.
func (r Ring) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"versions":%s,"current":%d,"keys":%q}`, jsonInts(r.Versions()), r.current, redacted), nil
}

// LogValue shows the versions, never the keys.
func (r Ring) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("versions", r.Versions()), slog.Int("current", r.current), slog.String("keys", redacted))
}

func jsonInts(vs []int) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.Itoa(v)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// MAC is HMAC-SHA256 of msg under a key derived (HKDF-SHA256) from the ring's key of this version for
// one purpose ("customer page links"). The derived key never leaves the ring, and a purpose's MACs reveal
// nothing about the encryption keys or another purpose's MACs, so one set of configured keys can sign
// links as well as seal billing keys. An unknown version is ErrUnknownKeyVersion.
func (r *Ring) MAC(purpose string, version int, msg []byte) ([]byte, error) {
	k, ok := r.keys[version]
	if !ok {
		return nil, fmt.Errorf("%w: %d (the ring holds %v)", ErrUnknownKeyVersion, version, r.Versions())
	}
	derived, err := hkdf.Key(sha256.New, k.b, nil, "dunningworks billing mac: "+purpose, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("keyring: derive %s key: %w", purpose, err)
	}
	m := hmac.New(sha256.New, derived)
	m.Write(msg)
	return m.Sum(nil), nil
}
