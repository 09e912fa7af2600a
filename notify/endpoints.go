package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/store"
)

// AllEvents subscribes an endpoint to every event type, including types added later.
const AllEvents = "*"

// EventTypes are the outbox event types an endpoint may subscribe to by name: the values of billing's
// Evt* constants. They are spelled out rather than imported so this list is reviewed whenever billing
// adds one; TestEventTypesMatchBilling fails until it is.
var EventTypes = []string{
	"credit_note.issued",
	"credit_note.voided",
	"customer.credit_granted",
	"customer.credit_removed",
	"invoice.created",
	"invoice.credit_applied",
	"invoice.finalized",
	"invoice.paid",
	"invoice.payment_failed",
	"invoice.uncollectible",
	"invoice.voided",
	"payment.backup_card_charged",
	"payment.deferred",
	"payment.failed",
	"payment.succeeded",
	"payment.tax_mismatch",
	"payment.unknown",
	"refund.failed",
	"refund.succeeded",
	"subscription.activated",
	"subscription.canceled",
	"subscription.created",
	"subscription.discount_applied",
	"subscription.incomplete_expired",
	"subscription.past_due",
	"subscription.paused",
	"subscription.recovered",
	"subscription.renewal_upcoming",
	"subscription.renewed",
	"subscription.resumed",
	"subscription.suspended",
	"subscription.unpaid",
	"subscription.updated",
}

// Endpoint statuses.
const (
	EndpointEnabled = "enabled"
	EndpointDeleted = "deleted"
)

// Endpoint is a registered webhook endpoint as the API shows it: never with its secret.
type Endpoint struct {
	ID        string     `json:"id"`
	URL       string     `json:"url"`
	Events    []string   `json:"events"`
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	DeletedAt *time.Time `json:"deleted_at"`
}

// CreatedEndpoint is the answer to a registration: the only time the signing secret is ever returned.
type CreatedEndpoint struct {
	Endpoint
	Secret string `json:"secret"`
}

// NewEndpoint is a registration request.
type NewEndpoint struct {
	URL    string
	Events []string
}

const (
	maxURLLength = 2048
	maxEvents    = 100
)

func validate(n NewEndpoint, allowPrivate bool) (NewEndpoint, error) {
	var v apperr.Validation
	u, err := url.Parse(n.URL)
	switch {
	case n.URL == "":
		v.Add("url", "is required")
	case len(n.URL) > maxURLLength:
		v.Add("url", "must be at most %d characters", maxURLLength)
	case err != nil || !u.IsAbs() || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "":
		v.Add("url", "must be an absolute http or https URL")
	case u.User != nil:
		// Credentials in the URL would be stored and shown in clear; the signature authenticates us.
		v.Add("url", "must not carry a user or password")
	case u.Fragment != "" || u.RawFragment != "":
		v.Add("url", "must not have a fragment")
	case !allowPrivate && checkHost(u.Hostname()) != nil:
		v.Add("url", "must point at a public address: loopback, private and link-local networks are refused in production")
	}
	out := NewEndpoint{URL: n.URL}
	switch {
	case len(n.Events) == 0:
		v.Add("events", `must name at least one event type, or "*" for all`)
	case len(n.Events) > maxEvents:
		v.Add("events", "must name at most %d event types", maxEvents)
	}
	for i, e := range n.Events {
		switch {
		case e == AllEvents:
			out.Events = []string{AllEvents}
		case !slices.Contains(EventTypes, e):
			v.Add(fmt.Sprintf("events[%d]", i), "unknown event type %q", e)
		case !slices.Contains(out.Events, e) && !slices.Contains(out.Events, AllEvents):
			out.Events = append(out.Events, e)
		}
	}
	if slices.Contains(out.Events, AllEvents) {
		out.Events = []string{AllEvents}
	}
	return out, v.Err()
}

// newSecret makes a signing secret: the prefix and 192 random bits.
func newSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("notify: secret: %w", err)
	}
	return SecretPrefix + hex.EncodeToString(b), nil
}

// binding ties a secret's ciphertext to its endpoint row: a ciphertext copied to another row won't open.
func binding(id string) []string { return []string{"webhook_endpoint", id} }

// CreateEndpoint registers an endpoint and returns it with its signing secret, which is stored only as
// key-ring ciphertext and never returned again.
func (s *Service) CreateEndpoint(ctx context.Context, n NewEndpoint) (CreatedEndpoint, error) {
	n, err := validate(n, s.allowPrivate)
	if err != nil {
		return CreatedEndpoint{}, err
	}
	if s.ring == nil {
		return CreatedEndpoint{}, errNoKeyRing
	}
	secret, err := newSecret()
	if err != nil {
		return CreatedEndpoint{}, err
	}
	id := ids.New("we")
	ct, version, err := s.ring.Seal([]byte(secret), binding(id)...)
	if err != nil {
		return CreatedEndpoint{}, err
	}
	row, err := s.q(s.pool).InsertEndpoint(ctx, store.InsertEndpointParams{ID: id, Url: n.URL, Events: n.Events,
		SecretCiphertext: ct, SecretKeyVersion: int32(version)})
	if err != nil {
		return CreatedEndpoint{}, fmt.Errorf("insert webhook endpoint: %w", err)
	}
	s.log.InfoContext(ctx, "webhook endpoint registered", "endpoint_id", id, "url", n.URL, "events", n.Events)
	return CreatedEndpoint{Endpoint: endpointView(store.GetEndpointRow(row)), Secret: secret}, nil
}

// GetEndpoint reads an endpoint, deleted ones included (their delivery history stays readable).
func (s *Service) GetEndpoint(ctx context.Context, id string) (Endpoint, error) {
	row, err := s.q(s.pool).GetEndpoint(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Endpoint{}, apperr.NotFound("webhook_endpoint", id)
	}
	if err != nil {
		return Endpoint{}, err
	}
	return endpointView(row), nil
}

// ListEndpoints lists the enabled endpoints, oldest first.
func (s *Service) ListEndpoints(ctx context.Context, p page.Request) (page.List[Endpoint], error) {
	rows, err := s.q(s.pool).ListEndpoints(ctx, store.ListEndpointsParams{HasCursor: p.HasCursor(), AfterTime: p.AfterTime,
		AfterID: p.AfterID, Max: int32(p.Limit + 1)})
	if err != nil {
		return page.List[Endpoint]{}, err
	}
	out := make([]Endpoint, 0, len(rows))
	for _, r := range rows {
		out = append(out, endpointView(store.GetEndpointRow(r)))
	}
	return page.Build(out, p.Limit, func(e Endpoint) (time.Time, string) { return e.CreatedAt, e.ID }), nil
}

// DeleteEndpoint soft-deletes an endpoint: no new deliveries are created for it and its pending ones are
// marked failed in the same transaction. Deleting twice answers the same deleted endpoint.
func (s *Service) DeleteEndpoint(ctx context.Context, id string) (Endpoint, error) {
	var out Endpoint
	err := dbx.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		row, err := s.q(tx).DeleteEndpoint(ctx, id)
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.NotFound("webhook_endpoint", id)
		}
		if err != nil {
			return err
		}
		n, err := s.q(tx).AbandonEndpointDeliveries(ctx, id)
		if err != nil {
			return err
		}
		if n > 0 {
			s.metrics.deliveries.WithLabelValues(outcomeAbandoned).Add(float64(n))
		}
		out = endpointView(store.GetEndpointRow(row))
		return nil
	})
	if err == nil {
		s.log.InfoContext(ctx, "webhook endpoint deleted", "endpoint_id", id)
	}
	return out, err
}

func endpointView(r store.GetEndpointRow) Endpoint {
	ev := r.Events
	if ev == nil {
		ev = []string{}
	}
	return Endpoint{ID: r.ID, URL: r.Url, Events: ev, Status: r.Status, CreatedAt: r.CreatedAt, DeletedAt: r.DeletedAt}
}

// Delivery is one event's delivery to one endpoint, with the outcome of its latest attempt.
type Delivery struct {
	ID            string     `json:"id"`
	EventID       string     `json:"event_id"`
	EventType     string     `json:"event_type"`
	EndpointID    string     `json:"endpoint_id"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	LastStatus    *int       `json:"last_status"`
	LastError     *string    `json:"last_error"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	CreatedAt     time.Time  `json:"created_at"`
	DeliveredAt   *time.Time `json:"delivered_at"`
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// ListDeliveries lists an endpoint's deliveries, oldest first.
func (s *Service) ListDeliveries(ctx context.Context, endpointID string, p page.Request) (page.List[Delivery], error) {
	if _, err := s.GetEndpoint(ctx, endpointID); err != nil {
		return page.List[Delivery]{}, err
	}
	var after int64
	if p.HasCursor() {
		var err error
		if after, err = strconv.ParseInt(p.AfterID, 10, 64); err != nil {
			return page.List[Delivery]{}, apperr.Invalid("cursor", "is not a cursor this API returned")
		}
	}
	rows, err := s.q(s.pool).ListDeliveries(ctx, store.ListDeliveriesParams{EndpointID: endpointID, HasCursor: p.HasCursor(),
		AfterTime: p.AfterTime, AfterID: after, Max: int32(p.Limit + 1)})
	if err != nil {
		return page.List[Delivery]{}, err
	}
	out := make([]Delivery, 0, len(rows))
	for _, r := range rows {
		out = append(out, deliveryView(r))
	}
	return page.Build(out, p.Limit, func(d Delivery) (time.Time, string) { return d.CreatedAt, d.ID }), nil
}

func deliveryView(r store.ListDeliveriesRow) Delivery {
	d := Delivery{ID: strconv.FormatInt(r.ID, 10), EventID: r.EventID, EventType: r.EventType, EndpointID: r.EndpointID,
		Status: r.Status, Attempts: int(r.Attempts), LastError: r.LastError, NextAttemptAt: r.NextAttemptAt,
		CreatedAt: r.CreatedAt, DeliveredAt: r.DeliveredAt}
	if r.LastStatus != nil {
		st := int(*r.LastStatus)
		d.LastStatus = &st
	}
	return d
}

// getDelivery reads one of an endpoint's deliveries: 404 when the endpoint has no such delivery.
func (s *Service) getDelivery(ctx context.Context, db dbx.DBTX, endpointID, deliveryID string) (Delivery, int64, error) {
	id, err := strconv.ParseInt(deliveryID, 10, 64)
	if err != nil {
		return Delivery{}, 0, apperr.NotFound("webhook_delivery", deliveryID)
	}
	row, err := s.q(db).GetDelivery(ctx, store.GetDeliveryParams{ID: id, EndpointID: endpointID})
	if errors.Is(err, pgx.ErrNoRows) {
		return Delivery{}, 0, apperr.NotFound("webhook_delivery", deliveryID)
	}
	if err != nil {
		return Delivery{}, 0, err
	}
	return deliveryView(store.ListDeliveriesRow(row)), id, nil
}

// Resend gives a failed delivery one more attempt, now: after the receiver was fixed, nobody should wait
// for the next event to find out. The attempt is the delivery's next (its count goes on); if it fails
// too, the delivery is failed again. Only a failed delivery of an enabled endpoint can be re-sent (409
// otherwise); a pending one is already on its way, a delivered one arrived.
func (s *Service) Resend(ctx context.Context, endpointID, deliveryID string) (Delivery, error) {
	if _, err := s.GetEndpoint(ctx, endpointID); err != nil {
		return Delivery{}, err
	}
	var out Delivery
	err := dbx.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		cur, id, err := s.getDelivery(ctx, tx, endpointID, deliveryID)
		if err != nil {
			return err
		}
		attempts, err := s.q(tx).ResendDelivery(ctx, store.ResendDeliveryParams{ID: id, EndpointID: endpointID, Now: s.wall.Now()})
		if errors.Is(err, pgx.ErrNoRows) {
			extra := map[string]any{"state": cur.Status, "allowed": []string{}}
			if cur.Status == DeliveryFailed {
				return &apperr.Error{Kind: apperr.KindConflict, Code: "endpoint_deleted", Extra: extra,
					Message: fmt.Sprintf("the endpoint of delivery %s was deleted: nothing can be sent to it", deliveryID)}
			}
			return &apperr.Error{Kind: apperr.KindConflict, Code: "illegal_state_transition", Extra: extra,
				Message: fmt.Sprintf("cannot resend delivery %s: it is %s (only a failed delivery can be re-sent)", deliveryID, cur.Status)}
		}
		if err != nil {
			return err
		}
		if s.enq != nil {
			if err := s.enq.EnqueueTx(ctx, tx, Ticket{DeliveryID: id, Attempt: int(attempts) + 1}); err != nil {
				return err
			}
		}
		out, _, err = s.getDelivery(ctx, tx, endpointID, deliveryID)
		return err
	})
	if err == nil {
		s.log.InfoContext(ctx, "webhook delivery re-sent", "delivery_id", deliveryID, "endpoint_id", endpointID)
	}
	return out, err
}
