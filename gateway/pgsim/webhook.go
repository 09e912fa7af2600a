package pgsim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

const (
	// webhookConcurrency bounds simultaneous webhook POSTs, so a load run cannot open unbounded sockets.
	webhookConcurrency = 16
	// webhookAttempts is how often one copy is tried. Toss retries for days; the simulator compresses that
	// into a few short backoffs (50, 100, 200 ms) so tests see retries without waiting.
	webhookAttempts  = 4
	webhookBackoff   = 50 * time.Millisecond
	maxDeliveryLog   = 10000
	eventTypePayment = "PAYMENT_STATUS_CHANGED"
)

// WebhookDelivery records one copy of one event, for tests that assert what the merchant was sent.
type WebhookDelivery struct {
	OrderID    string `json:"orderId"`
	Status     string `json:"status"`
	Copy       int    `json:"copy"`
	Attempts   int    `json:"attempts"`
	LastStatus int    `json:"lastStatus"`
	Error      string `json:"error,omitempty"`
	Delivered  bool   `json:"delivered"`
}

// hookPlan is one status change to announce: the payload and one delay per copy.
type hookPlan struct {
	url     string // fixed when the change happens, so SetWebhookURL never races a delivery
	payload []byte
	orderID string
	status  string
	delays  []time.Duration
}

// webhookLocked builds the event for c's current status and draws its copies and delays. Must be called
// with the lock held; returns nil when webhooks are off or the fault says zero copies.
func (s *Server) webhookLocked(c *charge) *hookPlan {
	if s.opts.WebhookURL == "" {
		return nil
	}
	copies, delay, reorder := 1, time.Duration(0), false
	if f := s.faults.Webhooks; f != nil {
		if f.Copies != nil {
			copies = min(max(*f.Copies, 0), 3)
		}
		delay = time.Duration(f.DelayMs) * time.Millisecond
		reorder = f.Reorder
	}
	if copies == 0 {
		return nil
	}
	p := &hookPlan{
		url:     s.opts.WebhookURL,
		payload: mustJSON(webhookView{EventType: eventTypePayment, CreatedAt: fmtWebhookTime(s.now()), Data: s.view(c)}),
		orderID: c.OrderID,
		status:  c.Status,
	}
	for range copies {
		d := delay
		if reorder {
			span := max(delay, 20*time.Millisecond) * 2
			d = time.Duration(s.rng.Int64N(int64(span)))
		}
		p.delays = append(p.delays, d)
	}
	return p
}

// SetWebhookURL points webhook deliveries at url ("" turns them off) for status changes from now on;
// deliveries already planned keep the URL they were planned with. A process that embeds the simulator and
// wants its own webhooks learns its address only once it listens, after the simulator was built.
func (s *Server) SetWebhookURL(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.WebhookURL = url
}

// WebhookPayload returns the body pgsim would send now for orderID's payment, or an error if it has none.
func (s *Server) WebhookPayload(orderID string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byOrder[orderID]
	if c == nil {
		c = s.failed[orderID]
	}
	if c == nil {
		return nil, fmt.Errorf("pgsim: no payment for order %q", orderID)
	}
	return mustJSON(webhookView{EventType: eventTypePayment, CreatedAt: fmtWebhookTime(s.now()), Data: s.view(c)}), nil
}

// Webhooks returns the delivery log (the latest 10,000 copies), in the order their delivery ended.
func (s *Server) Webhooks() []WebhookDelivery {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	return append([]WebhookDelivery(nil), s.hooks.log...)
}

type webhooks struct {
	client *http.Client
	logger *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	log    []WebhookDelivery
}

func newWebhooks(client *http.Client, logger *slog.Logger) *webhooks {
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &webhooks{client: client, logger: logger, ctx: ctx, cancel: cancel, sem: make(chan struct{}, webhookConcurrency)}
}

// deliver schedules every copy of p. It never blocks the caller: each copy waits out its delay on its own
// goroutine, and only webhookConcurrency of them post at a time.
func (h *webhooks) deliver(p *hookPlan) {
	if p == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for i, d := range p.delays {
		h.wg.Add(1)
		go h.send(p, i+1, d)
	}
}

func (h *webhooks) send(p *hookPlan, copyNo int, delay time.Duration) {
	defer h.wg.Done()
	if !sleepCtx(h.ctx, delay) {
		return
	}
	select {
	case h.sem <- struct{}{}:
	case <-h.ctx.Done():
		return
	}
	defer func() { <-h.sem }()
	rec := WebhookDelivery{OrderID: p.orderID, Status: p.status, Copy: copyNo}
	backoff := webhookBackoff
	for attempt := 1; attempt <= webhookAttempts; attempt++ {
		rec.Attempts = attempt
		status, err := h.post(p.url, p.payload)
		rec.LastStatus = status
		rec.Error = ""
		if err != nil {
			rec.Error = err.Error()
		}
		if err == nil && status == http.StatusOK {
			rec.Delivered = true
			break
		}
		if attempt == webhookAttempts || !sleepCtx(h.ctx, backoff) {
			break
		}
		backoff *= 2
	}
	if !rec.Delivered {
		h.logger.Warn("pgsim webhook not delivered", "order_id", p.orderID, "status", p.status, "attempts", rec.Attempts, "last_status", rec.LastStatus, "error", rec.Error)
	}
	h.mu.Lock()
	h.log = append(h.log, rec)
	if len(h.log) > maxDeliveryLog {
		h.log = append([]WebhookDelivery(nil), h.log[len(h.log)-maxDeliveryLog:]...)
	}
	h.mu.Unlock()
}

func (h *webhooks) post(url string, payload []byte) (int, error) {
	req, err := http.NewRequestWithContext(h.ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := h.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	_ = res.Body.Close()
	return res.StatusCode, nil
}

func (h *webhooks) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
}

func (h *webhooks) reset() {
	h.mu.Lock()
	h.log = nil
	h.mu.Unlock()
}

// sleepCtx waits d or until ctx ends; it reports whether the full wait happened.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
