package pgsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/gateway/pgsim"
)

// receiver is a merchant webhook endpoint that records what arrives and can refuse the first few.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	refuse int
	srv    *httptest.Server
}

func newReceiver(t *testing.T, refuse int) *receiver {
	t.Helper()
	r := &receiver{refuse: refuse}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.refuse > 0 {
			r.refuse--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		r.bodies = append(r.bodies, b)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

type event struct {
	EventType string `json:"eventType"`
	CreatedAt string `json:"createdAt"`
	Data      struct {
		OrderID string `json:"orderId"`
		Status  string `json:"status"`
	} `json:"data"`
}

func (r *receiver) events(t *testing.T) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]event, len(r.bodies))
	for i, b := range r.bodies {
		require.NoError(t, json.Unmarshal(b, &out[i]))
	}
	return out
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

func TestWebhookPerStatusChange(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 0)
	b := setup(t, pgsim.Options{Seed: 1, WebhookURL: rcv.srv.URL})
	bk := b.issue(t, "cust-1", "ok")
	pk := b.charge(t, bk, "cust-1", "order-0001", "", 100).body["paymentKey"].(string)
	require.Eventually(t, func() bool { return rcv.count() == 1 }, 2*time.Second, 5*time.Millisecond)
	b.call(t, "POST", "/v1/payments/"+pk+"/cancel", "", map[string]any{"cancelReason": "x"})
	require.NoError(t, b.sim.SetBehavior(bk, "insufficient"))
	b.charge(t, bk, "cust-1", "order-0002", "", 100)
	require.Eventually(t, func() bool { return rcv.count() == 3 }, 2*time.Second, 5*time.Millisecond)

	got := map[string]string{}
	for _, e := range rcv.events(t) {
		require.Equal(t, "PAYMENT_STATUS_CHANGED", e.EventType)
		require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$`, e.CreatedAt)
		got[e.Data.OrderID+" "+e.Data.Status] = e.Data.Status
	}
	require.Contains(t, got, "order-0001 DONE")
	require.Contains(t, got, "order-0001 CANCELED")
	require.Contains(t, got, "order-0002 ABORTED")
}

func TestWebhookCopiesRetriesAndSilence(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 2)
	b := setup(t, pgsim.Options{Seed: 1, WebhookURL: rcv.srv.URL})
	bk := b.issue(t, "cust-1", "ok")
	three := 3
	b.sim.SetFaults(pgsim.Faults{Webhooks: &pgsim.WebhookFaults{Copies: &three, DelayMs: 10}})
	b.charge(t, bk, "cust-1", "order-0001", "", 100)
	require.Eventually(t, func() bool { return rcv.count() == 3 }, 3*time.Second, 5*time.Millisecond, "refused copies are retried")
	bodies := rcv.events(t)
	require.Equal(t, bodies[0], bodies[1], "copies are the same event")
	require.Equal(t, bodies[0], bodies[2])

	// The log is written after the receiver answered; wait for it too.
	require.Eventually(t, func() bool { return len(b.sim.Webhooks()) == 3 }, 2*time.Second, 5*time.Millisecond)
	log := b.sim.Webhooks()
	attempts := 0
	for _, d := range log {
		require.True(t, d.Delivered)
		attempts += d.Attempts
	}
	require.Equal(t, 5, attempts, "two refusals, three deliveries")

	zero := 0
	b.sim.SetFaults(pgsim.Faults{Webhooks: &pgsim.WebhookFaults{Copies: &zero}})
	b.charge(t, bk, "cust-1", "order-0002", "", 100)
	time.Sleep(50 * time.Millisecond)
	require.Equal(t, 3, rcv.count(), "zero copies: the merchant hears nothing")
}

func TestWebhooksReorder(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 0)
	b := setup(t, pgsim.Options{Seed: 7, WebhookURL: rcv.srv.URL})
	bk := b.issue(t, "cust-1", "ok")
	b.sim.SetFaults(pgsim.Faults{Webhooks: &pgsim.WebhookFaults{DelayMs: 30, Reorder: true}})
	const n = 12
	for i := range n {
		b.charge(t, bk, "cust-1", "order-"+string(rune('a'+i))+"xxxxx", "", 100)
	}
	require.Eventually(t, func() bool { return rcv.count() == n }, 3*time.Second, 5*time.Millisecond)
	var order []string
	for _, e := range rcv.events(t) {
		order = append(order, e.Data.OrderID)
	}
	sorted := true
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			sorted = false
		}
	}
	require.False(t, sorted, "with reorder, events arrive out of order: %v", order)
}

func TestCloseStopsScheduledWebhooks(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 0)
	sim := pgsim.New(pgsim.Options{Seed: 1, SecretKey: secret, WebhookURL: rcv.srv.URL})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	b := &bundle{sim: sim, srv: srv}
	bk := b.issue(t, "cust-1", "ok")
	sim.SetFaults(pgsim.Faults{Webhooks: &pgsim.WebhookFaults{DelayMs: 10_000}})
	b.charge(t, bk, "cust-1", "order-0001", "", 100)
	start := time.Now()
	sim.Close()
	require.Less(t, time.Since(start), time.Second)
	require.Zero(t, rcv.count())
}

func TestWebhookPayload(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{Seed: 1})
	bk := b.issue(t, "cust-1", "ok")
	b.charge(t, bk, "cust-1", "order-0001", "", 100)
	raw, err := b.sim.WebhookPayload("order-0001")
	require.NoError(t, err)
	var e event
	require.NoError(t, json.Unmarshal(raw, &e))
	require.Equal(t, "DONE", e.Data.Status)
	_, err = b.sim.WebhookPayload("order-none")
	require.Error(t, err)
}

// A process that embeds the simulator learns its own address after building it: the URL can be set (and
// cleared) later, and applies from the next status change on.
func TestSetWebhookURLAppliesToLaterChanges(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 0)
	b := setup(t, pgsim.Options{Seed: 1})
	bk := b.issue(t, "cust-1", "ok")
	b.charge(t, bk, "cust-1", "order-0001", "", 100)
	b.sim.SetWebhookURL(rcv.srv.URL)
	b.charge(t, bk, "cust-1", "order-0002", "", 100)
	require.Eventually(t, func() bool { return rcv.count() == 1 }, 2*time.Second, 5*time.Millisecond)
	b.sim.SetWebhookURL("")
	b.charge(t, bk, "cust-1", "order-0003", "", 100)
	time.Sleep(30 * time.Millisecond)
	require.Equal(t, 1, rcv.count(), "cleared: no more deliveries")
	require.Equal(t, "order-0002", rcv.events(t)[0].Data.OrderID)
}
