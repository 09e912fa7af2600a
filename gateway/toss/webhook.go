package toss

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/dunningworks/billing/gateway"
)

// ErrMalformedWebhook is returned for a webhook body that is not a Toss event.
var ErrMalformedWebhook = errors.New("malformed webhook")

const maxWebhookBody = 1 << 20

// EventPaymentStatusChanged is Toss's event type for payment status changes.
const EventPaymentStatusChanged = "PAYMENT_STATUS_CHANGED"

type webhookBody struct {
	EventType string          `json:"eventType"`
	CreatedAt string          `json:"createdAt"`
	Data      json.RawMessage `json:"data"`
}

// ParseWebhook parses a Toss webhook. Payment-status events are not signed by Toss, so nothing is verified:
// the event is a hint, and its consumer re-fetches the order with Lookup before acting.
//
// Toss's payload carries no event id, so the ID is derived: the hex SHA-256 of eventType, orderId, status,
// lastTransactionKey and the raw createdAt string. Toss's retries of one event resend the same payload and
// so get the same ID (the inbox dedupes them); two partial cancels of one order differ by transaction key
// and createdAt. Other event types become OtherEvent with the hash of the whole body as ID.
func (a *Adapter) ParseWebhook(r *http.Request) (gateway.Event, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBody+1))
	if err != nil {
		return gateway.Event{}, fmt.Errorf("%s: read webhook: %w", a.name, err)
	}
	if len(raw) > maxWebhookBody {
		return gateway.Event{}, fmt.Errorf("%w: body over %d bytes", ErrMalformedWebhook, maxWebhookBody)
	}
	var w webhookBody
	if err := json.Unmarshal(raw, &w); err != nil {
		return gateway.Event{}, fmt.Errorf("%w: %v", ErrMalformedWebhook, err)
	}
	if w.EventType == "" {
		return gateway.Event{}, fmt.Errorf("%w: no eventType", ErrMalformedWebhook)
	}
	created, err := parseTime(w.CreatedAt)
	if err != nil {
		return gateway.Event{}, fmt.Errorf("%w: createdAt: %v", ErrMalformedWebhook, err)
	}
	if w.EventType != EventPaymentStatusChanged {
		sum := sha256.Sum256(raw)
		return gateway.Event{ID: hex.EncodeToString(sum[:]), Kind: gateway.OtherEvent, CreatedAt: created, Raw: raw}, nil
	}
	var p payment
	if len(w.Data) == 0 || json.Unmarshal(w.Data, &p) != nil {
		return gateway.Event{}, fmt.Errorf("%w: data is not a payment", ErrMalformedWebhook)
	}
	if p.OrderID == "" || p.Status == "" {
		return gateway.Event{}, fmt.Errorf("%w: payment without orderId or status", ErrMalformedWebhook)
	}
	return gateway.Event{
		ID:        derivedKey(w.EventType, p.OrderID, p.Status, p.LastTransactionKey, w.CreatedAt),
		Kind:      gateway.PaymentStatusChanged,
		OrderID:   p.OrderID,
		Status:    p.Status,
		CreatedAt: created,
		Raw:       raw,
	}, nil
}
