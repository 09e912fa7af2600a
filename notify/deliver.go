package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/store"
)

// Event is the JSON body of every delivery. created_at is when the event happened in domain time (the
// test clock's time under BILLING_TEST_CLOCK); the references are null when the event is not about one.
type Event struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	CreatedAt      time.Time       `json:"created_at"`
	Data           json.RawMessage `json:"data"`
	CustomerID     *string         `json:"customer_id"`
	SubscriptionID *string         `json:"subscription_id"`
	InvoiceID      *string         `json:"invoice_id"`
	AttemptID      *string         `json:"attempt_id"`
}

// DeliveryResult is what one Deliver call did.
type DeliveryResult struct {
	// Sent is false when the ticket was stale (the attempt was already made, or the delivery is over).
	Sent bool
	// Status is the delivery's status afterwards; HTTPStatus the endpoint's answer (0: none).
	Status     string
	HTTPStatus int
}

// Deliver makes attempt number attempt of a delivery: it POSTs the signed event and records the outcome
// on the row. A failed attempt schedules the next one on the backoff (the periodic dispatcher enqueues it
// when due) until MaxAttempts, when the delivery is marked failed. A ticket for an attempt that was
// already made, or for a delivery that is no longer pending, does nothing.
func (s *Service) Deliver(ctx context.Context, deliveryID int64, attempt int) (DeliveryResult, error) {
	row, err := s.q(s.pool).GetDeliveryForSend(ctx, deliveryID)
	if errors.Is(err, pgx.ErrNoRows) {
		return DeliveryResult{}, nil
	}
	if err != nil {
		return DeliveryResult{}, fmt.Errorf("load delivery %d: %w", deliveryID, err)
	}
	if row.Status != DeliveryPending || int(row.Attempts) != attempt-1 {
		return DeliveryResult{Status: row.Status}, nil
	}
	if row.EndpointStatus != EndpointEnabled {
		n, err := s.q(s.pool).AbandonDelivery(ctx, store.AbandonDeliveryParams{ID: deliveryID, LastError: "endpoint deleted"})
		if err != nil {
			return DeliveryResult{}, err
		}
		if n > 0 {
			s.metrics.deliveries.WithLabelValues(outcomeAbandoned).Inc()
		}
		return DeliveryResult{Status: DeliveryFailed}, nil
	}

	httpStatus, failure := s.send(ctx, row, attempt)
	rec := store.RecordAttemptParams{ID: deliveryID, PrevAttempts: int32(attempt - 1), Attempts: int32(attempt)}
	if httpStatus != 0 {
		st := int32(httpStatus)
		rec.LastStatus = &st
	}
	now := s.wall.Now()
	outcome := outcomeDelivered
	switch {
	case failure == "":
		rec.Status, rec.DeliveredAt = DeliveryDelivered, &now
	case attempt >= s.t.MaxAttempts:
		rec.Status, rec.LastError, outcome = DeliveryFailed, &failure, outcomeFailed
	default:
		next := now.Add(s.t.Backoff(attempt))
		rec.Status, rec.LastError, rec.NextAttemptAt, outcome = DeliveryPending, &failure, &next, outcomeRetrying
	}
	// The request is already sent: record it even if the job's context is ending.
	n, err := s.q(s.pool).RecordAttempt(context.WithoutCancel(ctx), rec)
	if err != nil {
		return DeliveryResult{}, fmt.Errorf("record delivery %d attempt %d: %w", deliveryID, attempt, err)
	}
	if n == 0 {
		// A duplicate job recorded this attempt first.
		return DeliveryResult{Sent: true, HTTPStatus: httpStatus}, nil
	}
	s.metrics.deliveries.WithLabelValues(outcome).Inc()
	log := s.log.With("delivery_id", deliveryID, "event_id", row.EventID, "endpoint_id", row.EndpointID, "attempt", attempt)
	switch outcome {
	case outcomeDelivered:
		log.DebugContext(ctx, "webhook delivered", "http_status", httpStatus)
	case outcomeRetrying:
		log.InfoContext(ctx, "webhook attempt failed; will retry", "http_status", httpStatus, "error", failure, "next_attempt_at", rec.NextAttemptAt)
	default:
		log.WarnContext(ctx, "webhook delivery failed; giving up", "http_status", httpStatus, "error", failure)
	}
	return DeliveryResult{Sent: true, Status: rec.Status, HTTPStatus: httpStatus}, nil
}

// send POSTs the event and returns the HTTP status (0 when there was no answer) and, unless the answer
// was 2xx, why the attempt failed.
func (s *Service) send(ctx context.Context, row store.GetDeliveryForSendRow, attempt int) (int, string) {
	if s.ring == nil {
		return 0, "no key ring to open the signing secret"
	}
	secret, err := s.ring.Open(row.SecretCiphertext, int(row.SecretKeyVersion), binding(row.EndpointID)...)
	if err != nil {
		s.log.ErrorContext(ctx, "webhook signing secret does not open", "endpoint_id", row.EndpointID, "err", err)
		return 0, "the endpoint's signing secret cannot be decrypted"
	}
	defer clear(secret)
	data := row.Data
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	body, err := json.Marshal(Event{ID: row.EventID, Type: row.EventType, CreatedAt: row.OccurredAt.UTC(), Data: data,
		CustomerID: row.CustomerID, SubscriptionID: row.SubscriptionID, InvoiceID: row.InvoiceID, AttemptID: row.AttemptID})
	if err != nil {
		return 0, "encode event: " + err.Error()
	}

	ctx, cancel := context.WithTimeout(ctx, s.t.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, row.Url, bytes.NewReader(body))
	if err != nil {
		return 0, "build request: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dunningworks-billing-webhooks/1")
	req.Header.Set(HeaderEventID, row.EventID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	req.Header.Set(HeaderSignature, Sign(string(secret), s.wall.Now(), body))
	start := time.Now()
	resp, err := s.client.Do(req)
	s.metrics.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Sprintf("no answer within %s", s.t.Timeout)
		}
		return 0, clean(err.Error())
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, ""
	}
	msg := "HTTP " + strconv.Itoa(resp.StatusCode)
	if t := strings.TrimSpace(clean(string(snippet))); t != "" {
		msg += ": " + t
	}
	return resp.StatusCode, msg
}

// clean makes an endpoint's answer safe to store as text: valid UTF-8, no NUL (Postgres refuses it), short.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "..."
	}
	return s
}
