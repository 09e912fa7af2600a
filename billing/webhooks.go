package billing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/statemachine"
)

// WorkProcessWebhook is an inbound webhook in the inbox waiting to be processed. Its Work.ID is
// WebhookWorkID(gateway, event id).
const WorkProcessWebhook WorkKind = "process_webhook"

// Results recorded on a processed inbox row.
const (
	// WebhookApplied: the event named an unsettled attempt, and the lookup it prompted settled it.
	WebhookApplied = "applied"
	// WebhookStale: the attempt was already settled when the event was processed (a late, duplicate or
	// reordered event). Nothing moved: states only move forward, and only on what the gateway answers now.
	WebhookStale = "stale"
	// WebhookUnknownOrder: no attempt of ours has the order id. Reconciliation reports such charges.
	WebhookUnknownOrder = "unknown_order"
	// WebhookUnresolved: the lookup was inconclusive; the reconciler keeps its own schedule for the attempt.
	WebhookUnresolved = "unresolved"
	// WebhookIgnored: an event kind the service does not act on; stored and acknowledged only.
	WebhookIgnored = "ignored"
	// WebhookCoalesced: another event of the same order prompted a lookup that started after this one
	// was stored, so that lookup answered this event too; it cost no lookup of its own.
	WebhookCoalesced = "coalesced"
)

// DefaultWebhookLookupWindow is how long after a webhook made us look an order up further webhooks for
// the same order wait, to share one lookup at the end of the window (BILLING_WEBHOOK_LOOKUP_WINDOW).
const DefaultWebhookLookupWindow = 10 * time.Second

// coalesceBatch bounds how many waiting events of one order a lookup marks answered at once; the rest
// are answered by later lookups.
const coalesceBatch = 1000

// WebhookDeferred is ProcessWebhook's error for an event whose order a webhook already had looked up
// within the window: its job runs again after Wait, when one lookup answers every event that waited
// (or finds the event answered already). Nothing failed; the job is to be snoozed, not retried.
type WebhookDeferred struct {
	Wait time.Duration
}

func (e *WebhookDeferred) Error() string {
	return fmt.Sprintf("webhook deferred %s: its order was looked up on a webhook's account within the window", e.Wait)
}

// WebhookSilenceWindow is how long a gateway may send no webhook while charges are made there before it
// counts as silent, and WebhookSilenceGrace how old a charge must be before its webhook is expected.
const (
	WebhookSilenceWindow = time.Hour
	WebhookSilenceGrace  = 5 * time.Minute
)

// receiptClockAge is how old a test-clock reading may be to stamp a receipt (clock.Recent): the stamp only
// feeds the silence check, whose window is an hour.
const receiptClockAge = 100 * time.Millisecond

// paymentKeyRef marks an inbox row's order_id that is the gateway's payment key instead (our order ids
// never start with it).
const paymentKeyRef = "paymentkey:"

// WebhookWorkID names an inbox row in a Work item.
func WebhookWorkID(gw, eventID string) string { return gw + ":" + eventID }

// ParseWebhookWorkID is the inverse of WebhookWorkID (gateway names never hold a colon; event ids may).
func ParseWebhookWorkID(id string) (gw, eventID string, ok bool) {
	gw, eventID, ok = strings.Cut(id, ":")
	return gw, eventID, ok && gw != "" && eventID != ""
}

// ReceiveWebhook stores a verified event in the inbox and returns: receiving is one INSERT through the
// inbox's own small pool, so the gateway gets its 200 in milliseconds however busy the workers are
// (issue 16 measured 750 ms p99 when the handler also enqueued the job on the workers' pool). The row is
// the truth: the dispatcher (woken here, and on a timer in every replica) enqueues its processing job,
// and nothing the handler does can lose the event once the INSERT committed. A duplicate (same gateway and
// event id) stores nothing and reports stored false.
func (s *Service) ReceiveWebhook(ctx context.Context, gw string, ev gateway.Event) (stored bool, err error) {
	if ev.ID == "" {
		return false, errors.New("webhook event without an id")
	}
	raw := ev.Raw
	if raw == nil {
		raw = []byte{}
	}
	orderID := ev.OrderID
	if orderID == "" && ev.PaymentKey != "" {
		// The event names the payment, not the order (Stripe's charge.refunded): processing finds the
		// order by the payment key. Receiving stays one INSERT.
		orderID = paymentKeyRef + ev.PaymentKey
	}
	_, err = s.q(s.inbox).InsertWebhook(ctx, store.InsertWebhookParams{Gateway: gw, EventID: ev.ID, EventKind: string(ev.Kind),
		OrderID: strPtr(orderID), Payload: raw, ReceivedAt: clock.Recent(s.clock, receiptClockAge)})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // a duplicate: the first copy's job does the work
	}
	if err != nil {
		return false, fmt.Errorf("store webhook %s/%s: %w", gw, ev.ID, err)
	}
	select {
	case s.arrivals <- struct{}{}:
	default: // a wake-up is already pending; that dispatch will claim this row too
	}
	return true, nil
}

// WebhookArrivals is signalled (at most one pending signal) whenever ReceiveWebhook stores an event: the
// dispatcher waits on it so a new event is enqueued at once rather than at the next tick.
func (s *Service) WebhookArrivals() <-chan struct{} { return s.arrivals }

// DispatchWebhooks enqueues the processing jobs of up to max inbox rows nobody has enqueued yet, in one
// transaction with marking them dispatched, and returns how many it claimed. Replicas may run it at the
// same time: each claims different rows (SKIP LOCKED).
func (s *Service) DispatchWebhooks(ctx context.Context, max int) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		rows, err := s.q(tx).ClaimUndispatchedWebhooks(ctx, store.ClaimUndispatchedWebhooksParams{DispatchedAt: &now, Max: int32(max)})
		if err != nil {
			return fmt.Errorf("claim inbox rows: %w", err)
		}
		n = len(rows)
		work := make([]Work, 0, len(rows))
		for _, r := range rows {
			work = append(work, Work{Kind: WorkProcessWebhook, ID: WebhookWorkID(r.Gateway, r.EventID), At: r.ReceivedAt})
		}
		return s.sched.ScheduleTx(ctx, tx, work...)
	})
	return n, err
}

// ProcessWebhook acts on one inbox row and records the result on it; a processed row is not processed
// again. A payment-status event is only a hint: the attempt with its order id is settled by
// ResolveAttempt, which asks the gateway for the order before anything changes, so a forged, stale or
// reordered event can at most cause a lookup. Outcomes are recorded only on pending or unknown attempts,
// so an event never moves a state backwards.
func (s *Service) ProcessWebhook(ctx context.Context, gw, eventID string) (string, error) {
	row, err := s.q(s.pool).GetWebhook(ctx, store.GetWebhookParams{Gateway: gw, EventID: eventID})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("webhook %s/%s: %w", gw, eventID, err)
	}
	if row.ProcessedAt != nil {
		return deref(row.Result), nil
	}
	result, covered, err := s.applyWebhook(ctx, row)
	if err != nil {
		var deferred *WebhookDeferred
		if errors.As(err, &deferred) {
			return "", err
		}
		if errors.Is(err, errAnswered) {
			return WebhookCoalesced, nil
		}
		return "", fmt.Errorf("process webhook %s/%s: %w", gw, eventID, err)
	}
	now := s.clock.Now()
	if _, err := s.q(s.pool).MarkWebhookProcessed(ctx, store.MarkWebhookProcessedParams{Gateway: gw, EventID: eventID,
		ProcessedAt: &now, Result: &result}); err != nil {
		return "", fmt.Errorf("mark webhook %s/%s processed: %w", gw, eventID, err)
	}
	if len(covered) > 0 {
		coalesced := WebhookCoalesced
		if _, err := s.q(s.pool).MarkWebhooksProcessed(ctx, store.MarkWebhooksProcessedParams{Gateway: gw, EventIds: covered,
			ProcessedAt: &now, Result: &coalesced}); err != nil {
			return "", fmt.Errorf("mark events of order %s answered: %w", deref(row.OrderID), err)
		}
	}
	s.log.Debug("webhook processed", "gateway", gw, "event_id", eventID, "order_id", deref(row.OrderID), "result", result,
		"coalesced", len(covered))
	return result, nil
}

// claimWebhookLookup makes sure a webhook looks an attempt's order up at most once per window, and
// returns the other events of the order the lookup about to start will answer as well. Forged events
// for a real order therefore cost at most one lookup per window however many arrive: the first looks
// up at once, the rest wait for the window's end, when one of them looks up for all (WebhookDeferred).
// The window is on the wall clock: it protects the gateway from real load, as the breaker does.
func (s *Service) claimWebhookLookup(ctx context.Context, row store.WebhookInbox, att store.PaymentAttempt) ([]string, error) {
	now := time.Now()
	n, err := s.q(s.pool).ClaimWebhookLookup(ctx, store.ClaimWebhookLookupParams{ID: att.ID, Now: now, Cutoff: now.Add(-s.lookupWindow)})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		wait := s.lookupWindow
		if att.WebhookLookupAt != nil {
			wait = max(att.WebhookLookupAt.Add(s.lookupWindow).Sub(now), 10*time.Millisecond)
		}
		return nil, &WebhookDeferred{Wait: wait}
	}
	// Events stored before the lookup starts are answered by it: they are marked with this one's.
	ids, err := s.q(s.pool).UnprocessedWebhooksOfOrder(ctx, store.UnprocessedWebhooksOfOrderParams{Gateway: row.Gateway,
		OrderID: row.OrderID, Max: coalesceBatch})
	if err != nil {
		return nil, err
	}
	covered, self := ids[:0], false
	for _, id := range ids {
		if id == row.EventID {
			self = true
		} else {
			covered = append(covered, id)
		}
	}
	if !self {
		// Another event's lookup answered this one after this job read it: nothing is left to do.
		return nil, errAnswered
	}
	return covered, nil
}

// errAnswered: the event was marked answered by another event's lookup while its job ran.
var errAnswered = errors.New("webhook answered by another event's lookup")

func (s *Service) applyWebhook(ctx context.Context, row store.WebhookInbox) (result string, covered []string, err error) {
	if row.EventKind != string(gateway.PaymentStatusChanged) || row.OrderID == nil {
		return WebhookIgnored, nil, nil
	}
	var att store.PaymentAttempt
	if pk, ok := strings.CutPrefix(*row.OrderID, paymentKeyRef); ok {
		att, err = s.q(s.pool).AttemptByPaymentKey(ctx, store.AttemptByPaymentKeyParams{Gateway: row.Gateway, PaymentKey: &pk})
	} else {
		att, err = s.q(s.pool).AttemptByOrderID(ctx, *row.OrderID)
	}
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && att.Gateway != row.Gateway) {
		// Nothing of ours: one indexed read, no lookup. Reconciliation reports charges we never made.
		return WebhookUnknownOrder, nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	if !attemptUnsettled(att.Status) && att.Status != string(statemachine.AttemptSucceeded) {
		return WebhookStale, nil, nil // declined, failed or reversed: nothing at the gateway can change it
	}
	covered, err = s.claimWebhookLookup(ctx, row, att)
	if err != nil {
		return "", nil, err
	}
	if !attemptUnsettled(att.Status) {
		// A settled payment can still change at the gateway: a refund made there (a dashboard cancel,
		// Stripe's charge.refunded). The lookup books any the books do not have.
		n, err := s.SyncRefunds(ctx, att.ID)
		if err != nil {
			return "", nil, err
		}
		if n > 0 {
			return WebhookApplied, covered, nil
		}
		return WebhookStale, covered, nil
	}
	if _, err := s.ResolveAttempt(ctx, att.ID, ResolveOptions{Now: true}); err != nil {
		return "", nil, err
	}
	after, err := s.q(s.pool).GetAttempt(ctx, att.ID)
	if err != nil {
		return "", nil, err
	}
	if attemptUnsettled(after.Status) {
		return WebhookUnresolved, covered, nil
	}
	return WebhookApplied, covered, nil
}

func attemptUnsettled(status string) bool {
	return status == string(statemachine.AttemptPending) || status == string(statemachine.AttemptUnknown)
}

// DueWebhooks lists inbox rows received at or before `before` that are still unprocessed: their job was
// lost (discarded after its retries, or never committed by River). The caller re-enqueues them; jobs
// still waiting are not duplicated.
func (s *Service) DueWebhooks(ctx context.Context, before time.Time, max int) ([]Work, error) {
	rows, err := s.q(s.pool).UnprocessedWebhooks(ctx, store.UnprocessedWebhooksParams{Before: before, Max: int32(max)})
	if err != nil {
		return nil, err
	}
	out := make([]Work, 0, len(rows))
	for _, r := range rows {
		out = append(out, Work{Kind: WorkProcessWebhook, ID: WebhookWorkID(r.Gateway, r.EventID), At: r.ReceivedAt})
	}
	return out, nil
}

// webhookExpiryBatch is how many inbox rows one DELETE removes: short statements, short locks.
const webhookExpiryBatch = 5000

// ExpireWebhooks deletes inbox rows processed before `before` (domain time, like the rows' stamps), a
// batch at a time, and returns how many went. Unprocessed rows stay whatever their age: until its job has
// acted on it, a row is the event's only record.
func (s *Service) ExpireWebhooks(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		n, err := s.q(s.pool).ExpireWebhooks(ctx, store.ExpireWebhooksParams{Before: before, Batch: webhookExpiryBatch})
		total += n
		if err != nil {
			return total, fmt.Errorf("expire inbox rows: %w", err)
		}
		if n < webhookExpiryBatch {
			return total, nil
		}
	}
}

// WebhookHealth is whether a gateway's webhooks are arriving.
type WebhookHealth struct {
	Gateway string
	// LastReceivedAt is the domain time of the newest inbox row from the gateway (nil: none ever).
	LastReceivedAt *time.Time
	// Charges counts attempts that reached the card (succeeded or declined) in the last
	// WebhookSilenceWindow, leaving out the last WebhookSilenceGrace, whose webhooks may be on their way,
	// up to webhookHealthCountCap (a billing day's hour holds every renewal's attempt).
	Charges int
	// Silent: charges were made there and no webhook arrived for a whole WebhookSilenceWindow.
	Silent bool
}

// webhookHealthCountCap is where WebhookHealth stops counting recent charges: silence needs only one.
const webhookHealthCountCap = 1000

// WebhookHealth reports, per gateway, whether its webhooks went silent while charges were made there.
// Polling still settles every attempt; silence means the faster path is broken (a wrong endpoint URL, a
// firewall, a rotated secret) and someone should look.
func (s *Service) WebhookHealth(ctx context.Context, gateways []string) ([]WebhookHealth, error) {
	now := s.clock.Now()
	q := s.q(s.pool)
	out := make([]WebhookHealth, 0, len(gateways))
	for _, gw := range gateways {
		h := WebhookHealth{Gateway: gw}
		last, err := q.LastWebhookAt(ctx, gw)
		switch {
		case err == nil:
			h.LastReceivedAt = &last
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, fmt.Errorf("last webhook of %s: %w", gw, err)
		}
		n, err := q.CountGatewayCharges(ctx, store.CountGatewayChargesParams{Gateway: gw,
			FromAt: now.Add(-WebhookSilenceWindow), ToAt: now.Add(-WebhookSilenceGrace), MaxCount: webhookHealthCountCap})
		if err != nil {
			return nil, fmt.Errorf("recent charges of %s: %w", gw, err)
		}
		h.Charges = int(n)
		h.Silent = h.Charges > 0 && (h.LastReceivedAt == nil || now.Sub(*h.LastReceivedAt) > WebhookSilenceWindow)
		out = append(out, h)
	}
	return out, nil
}
