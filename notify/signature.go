package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of a delivery.
const (
	HeaderSignature = "Billing-Signature"
	HeaderEventID   = "Billing-Event-Id"
	HeaderAttempt   = "Billing-Delivery-Attempt"
)

// SecretPrefix starts every signing secret, so one found in a log or a repository says what it is.
const SecretPrefix = "whsec_"

// Sign is the Billing-Signature header for body sent at t: "t=<unix seconds>,v1=<hex HMAC-SHA256>" with
// the whole secret string (prefix included) as the key over "<unix seconds>.<body>". Binding the
// timestamp lets a receiver refuse replays of an old request.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ErrSignature means a Billing-Signature header does not verify.
var ErrSignature = errors.New("notify: webhook signature does not verify")

// Verify checks a Billing-Signature header the way a receiver should: some v1 signature must match in
// constant time, and the timestamp must be within tolerance of now (either side). It is what the tests
// and docs/notifications.md show receivers.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: malformed header", ErrSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || -d > tolerance {
		return fmt.Errorf("%w: timestamp %s is outside the %s tolerance", ErrSignature, time.Unix(sec, 0).UTC().Format(time.RFC3339), tolerance)
	}
	want := []byte(mac(secret, ts, body))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrSignature)
}
