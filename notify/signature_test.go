package notify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/notify"
)

func TestSignIsHMACOverTimestampAndBody(t *testing.T) {
	t.Parallel()
	secret, body := "whsec_0123456789abcdef", []byte(`{"id":"evt_1"}`)
	at := time.Unix(1_700_000_000, 0)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("1700000000." + string(body)))
	require.Equal(t, "t=1700000000,v1="+hex.EncodeToString(m.Sum(nil)), notify.Sign(secret, at, body))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	secret, body := "whsec_secret", []byte(`{"id":"evt_1"}`)
	at := time.Unix(1_700_000_000, 0)
	header := notify.Sign(secret, at, body)
	tol := 5 * time.Minute

	require.NoError(t, notify.Verify(secret, header, body, at.Add(4*time.Minute), tol))
	require.NoError(t, notify.Verify(secret, "v1=deadbeef, "+header, body, at, tol), "any one v1 may match (secret rolls)")

	for name, c := range map[string]struct {
		secret, header string
		body           []byte
		now            time.Time
	}{
		"other secret":       {"whsec_other", header, body, at},
		"altered body":       {secret, header, []byte(`{"id":"evt_2"}`), at},
		"replayed late":      {secret, header, body, at.Add(6 * time.Minute)},
		"from the future":    {secret, header, body, at.Add(-6 * time.Minute)},
		"timestamp altered":  {secret, fmt.Sprintf("t=%d,%s", at.Unix()+1, header[len("t=1700000000,"):]), body, at},
		"no signature":       {secret, "t=1700000000", body, at},
		"garbage":            {secret, "nonsense", body, at},
		"empty":              {secret, "", body, at},
		"signature elsewise": {secret, "t=1700000000,v0=" + header[len("t=1700000000,v1="):], body, at},
	} {
		err := notify.Verify(c.secret, c.header, c.body, c.now, tol)
		require.ErrorIs(t, err, notify.ErrSignature, name)
	}
}

func TestBackoffDoublesToTheCap(t *testing.T) {
	t.Parallel()
	tu := notify.Tuning{BackoffBase: 30 * time.Second, BackoffMax: time.Hour}
	var got []time.Duration
	for a := 1; a <= 10; a++ {
		got = append(got, tu.Backoff(a))
	}
	m := time.Minute
	require.Equal(t, []time.Duration{30 * time.Second, m, 2 * m, 4 * m, 8 * m, 16 * m, 32 * m, time.Hour, time.Hour, time.Hour}, got)
	require.Equal(t, time.Hour, tu.Backoff(1000), "no overflow far out")
	require.Equal(t, 30*time.Second, notify.Tuning{}.Backoff(1), "the default base")
}
