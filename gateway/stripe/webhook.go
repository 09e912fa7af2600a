package stripe

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dunningworks/billing/gateway"
)

// WebhookTolerance is how far a signature's timestamp may be from now, either way, as Stripe advises.
const WebhookTolerance = 300 * time.Second

// maxWebhookBytes bounds the body read before the signature is checked; Stripe events are a few KB.
const maxWebhookBytes = 1 << 20

// ParseWebhook verifies the Stripe-Signature header and parses the event.
//
// Verification is hand-written rather than stripe-go's webhook package: that package reads time.Now
// itself (tests could not pin the clock), accepts any timestamp in the future, and refuses events whose
// API version differs from the SDK's, which is not a reason to drop a payment hint.
func (a *Adapter) ParseWebhook(r *http.Request) (gateway.Event, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBytes+1))
	if err != nil {
		return gateway.Event{}, fmt.Errorf("stripe webhook: read body: %w", err)
	}
	if len(body) > maxWebhookBytes {
		return gateway.Event{}, fmt.Errorf("%w: body larger than %d bytes", gateway.ErrInvalidSignature, maxWebhookBytes)
	}
	if err := verifySignature(body, r.Header.Get("Stripe-Signature"), a.webhookSecret, a.now()); err != nil {
		return gateway.Event{}, err
	}

	var ev struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Created int64  `json:"created"`
		Data    struct {
			Object struct {
				ID            string            `json:"id"`
				Object        string            `json:"object"`
				Status        string            `json:"status"`
				Metadata      map[string]string `json:"metadata"`
				PaymentIntent json.RawMessage   `json:"payment_intent"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return gateway.Event{}, fmt.Errorf("stripe webhook: decode event: %w", err)
	}
	if ev.ID == "" {
		return gateway.Event{}, fmt.Errorf("stripe webhook: event has no id")
	}
	out := gateway.Event{
		ID:        ev.ID,
		Kind:      gateway.OtherEvent,
		Status:    ev.Data.Object.Status,
		CreatedAt: time.Unix(ev.Created, 0).UTC(),
		Raw:       body,
	}
	// An event without an order id has nothing to look up; it is kept and acknowledged as other.
	if orderID := ev.Data.Object.Metadata["order_id"]; orderID != "" && isPaymentEvent(ev.Type) {
		out.Kind = gateway.PaymentStatusChanged
		out.OrderID = orderID
	} else if isPaymentEvent(ev.Type) {
		// A Charge (charge.refunded, ...) does not carry the PaymentIntent's metadata: name the payment by
		// its PaymentIntent, which is our payment key, and let the receiver find the order.
		pk := ev.Data.Object.ID
		if ev.Data.Object.Object == "charge" {
			pk = ""
			var s string
			if json.Unmarshal(ev.Data.Object.PaymentIntent, &s) == nil {
				pk = s
			} else {
				var o struct {
					ID string `json:"id"`
				}
				if json.Unmarshal(ev.Data.Object.PaymentIntent, &o) == nil {
					pk = o.ID
				}
			}
		}
		if strings.HasPrefix(pk, "pi_") {
			out.Kind = gateway.PaymentStatusChanged
			out.PaymentKey = pk
		}
	}
	return out, nil
}

// isPaymentEvent reports events about a PaymentIntent or Charge of ours. charge.dispute.* and
// charge.refund.* carry other objects (a Dispute, a Refund) whose metadata is not the order's.
func isPaymentEvent(typ string) bool {
	switch typ {
	case "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled", "payment_intent.processing":
		return true
	}
	rest, ok := strings.CutPrefix(typ, "charge.")
	return ok && rest != "" && !strings.Contains(rest, ".")
}

// verifySignature checks "t=<unix>,v1=<hex>[,v1=<hex>...]": HMAC-SHA256 of "<t>.<body>" under secret. Any
// v1 may match, because Stripe signs with both the old and the new secret while a secret is rolled.
func verifySignature(body []byte, header, secret string, now time.Time) error {
	if secret == "" {
		return fmt.Errorf("%w: no webhook secret configured", gateway.ErrInvalidSignature)
	}
	var (
		ts     int64
		haveTS bool
		sigs   [][]byte
	)
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || haveTS {
				return fmt.Errorf("%w: bad timestamp", gateway.ErrInvalidSignature)
			}
			ts, haveTS = n, true
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil && len(sig) == sha256.Size {
				sigs = append(sigs, sig)
			}
		}
	}
	if !haveTS || len(sigs) == 0 {
		return fmt.Errorf("%w: missing timestamp or v1 signature", gateway.ErrInvalidSignature)
	}
	signedAt := time.Unix(ts, 0)
	if d := now.Sub(signedAt); d > WebhookTolerance || d < -WebhookTolerance {
		return fmt.Errorf("%w: timestamp %s is outside the %s tolerance", gateway.ErrInvalidSignature, signedAt.UTC().Format(time.RFC3339), WebhookTolerance)
	}
	want := computeSignature(ts, body, secret)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", gateway.ErrInvalidSignature)
}

func computeSignature(ts int64, body []byte, secret string) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte("."))
	mac.Write(body)
	return mac.Sum(nil)
}

// SignatureHeader returns the Stripe-Signature header Stripe would send for body signed with secret at
// t. It lets tests (here and in the webhook endpoint) post events the adapter accepts.
func SignatureHeader(secret string, t time.Time, body []byte) string {
	return "t=" + strconv.FormatInt(t.Unix(), 10) + ",v1=" + hex.EncodeToString(computeSignature(t.Unix(), body, secret))
}
