package pgsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// ErrNotFound is returned by control methods for an unknown billing key, customer or order.
var ErrNotFound = errors.New("pgsim: not found")

// Charges returns every committed charge (DONE, CANCELED, PARTIAL_CANCELED, planted), in commit order.
// Declined attempts and charges still held by a "processing" fault are not charges.
func (s *Server) Charges() []Charge {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Charge, len(s.ordered))
	for i, c := range s.ordered {
		out[i] = c.snapshot()
	}
	return out
}

// Lookups is how many times the payment of orderID was looked up (by order id or by payment key) and
// found, so tests can count what a flood of webhooks cost the gateway.
func (s *Server) Lookups(orderID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups[orderID]
}

// Charge returns the committed charge for orderID.
func (s *Server) Charge(orderID string) (Charge, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byOrder[orderID]
	if c == nil || c.Status == "IN_PROGRESS" {
		return Charge{}, false
	}
	return c.snapshot(), true
}

// BillingKeys returns every issued billing key.
func (s *Server) BillingKeys() []BillingKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]BillingKey, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b BillingKey) int { return strings.Compare(a.BillingKey, b.BillingKey) })
	return out
}

// DeletedBillingKeys returns the billing keys deleted through DELETE /v1/billing/{billingKey}, oldest
// first. A deleted key is no longer in BillingKeys.
func (s *Server) DeletedBillingKeys() []DeletedKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DeletedKey, 0, len(s.deleted))
	for _, d := range s.deleted {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b DeletedKey) int {
		if c := a.DeletedAt.Compare(b.DeletedAt); c != 0 {
			return c
		}
		return strings.Compare(a.BillingKey, b.BillingKey)
	})
	return out
}

// SetBehavior changes how billingKey's card behaves from the next charge on. A flaky-N behavior restarts
// its count.
func (s *Server) SetBehavior(billingKey, behavior string) error {
	b, n, err := parseBehavior(behavior)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[billingKey]
	if k == nil {
		return fmt.Errorf("%w: billing key", ErrNotFound)
	}
	k.Behavior, k.FlakyLeft = b, n
	s.log.Info("pgsim behavior set", "billing_key_suffix", suffix(billingKey), "behavior", b)
	return nil
}

// SetCustomerBehavior changes the behavior of every billing key issued to customerKey.
func (s *Server) SetCustomerBehavior(customerKey, behavior string) error {
	b, n, err := parseBehavior(behavior)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for _, k := range s.keys {
		if k.CustomerKey == customerKey {
			k.Behavior, k.FlakyLeft, found = b, n, true
		}
	}
	if !found {
		return fmt.Errorf("%w: no billing key for customer %q", ErrNotFound, customerKey)
	}
	s.log.Info("pgsim behavior set", "customer_key", customerKey, "behavior", b)
	return nil
}

// SetFaults replaces the whole fault configuration (gateway-wide and per billing key).
func (s *Server) SetFaults(f Faults) {
	f = f.clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Outage != nil && f.Outage.ForMs > 0 {
		f.Outage.Until = s.now().Add(time.Duration(f.Outage.ForMs) * time.Millisecond)
		f.Outage.ForMs = 0
	}
	s.faults = f
	s.log.Info("pgsim faults set", "faults", string(mustJSON(f)))
}

// SetBillingKeyFaults sets (replaces) the faults for one billing key, leaving the rest as they are.
func (s *Server) SetBillingKeyFaults(billingKey string, f ChargeFaults) {
	f = f.clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.BillingKeys == nil {
		s.faults.BillingKeys = map[string]ChargeFaults{}
	}
	s.faults.BillingKeys[billingKey] = f
	s.log.Info("pgsim billing key faults set", "billing_key_suffix", suffix(billingKey), "faults", string(mustJSON(f)))
}

// Faults returns the current fault configuration, with counters as consumed so far.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.clone()
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.SetFaults(Faults{}) }

// Plant creates a committed charge the merchant never requested (if orderID is new) or changes the amount
// of an existing one, for reconciliation tests. A new charge gets a DONE transaction.
func (s *Server) Plant(orderID string, p Plant) (Charge, error) {
	if !p.Amount.IsPositive() {
		return Charge{}, errors.New("pgsim: plant amount must be positive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.byOrder[orderID]; c != nil && c.Status != "IN_PROGRESS" {
		paid := c.Amount.Sub(c.BalanceAmount)
		c.Amount = p.Amount
		c.BalanceAmount = decimal.Max(p.Amount.Sub(paid), decimal.Zero)
		if c.doneTx != nil {
			c.doneTx.amount = p.Amount
		}
		c.Planted = true
		return c.snapshot(), nil
	}
	if p.Currency == "" {
		p.Currency = "KRW"
	}
	if p.ApprovedAt.IsZero() {
		p.ApprovedAt = s.now()
	}
	c := &charge{Charge: Charge{
		OrderID: orderID, OrderName: "planted", PaymentKey: "sim_" + s.randString(alnum, 28),
		BillingKey: p.BillingKey, CustomerKey: p.CustomerKey, Amount: p.Amount, BalanceAmount: p.Amount,
		Currency: p.Currency, Status: "DONE", RequestedAt: p.ApprovedAt, ApprovedAt: p.ApprovedAt, Planted: true,
	}}
	t := &txn{key: s.randString(hexUp, 32), paymentKey: c.PaymentKey, orderID: orderID, status: "DONE",
		at: p.ApprovedAt, currency: p.Currency, amount: p.Amount}
	c.lastTxKey, c.doneTx = t.key, t
	s.txns = append(s.txns, t)
	s.byOrder[orderID] = c
	s.byPayment[c.PaymentKey] = c
	s.ordered = append(s.ordered, c)
	return c.snapshot(), nil
}

// Reset forgets everything: billing keys, charges, idempotency records, faults and the webhook log.
// Charges still held by a "processing" fault are dropped.
func (s *Server) Reset() {
	s.mu.Lock()
	s.resetLocked()
	s.mu.Unlock()
	s.hooks.reset()
	s.log.Info("pgsim reset")
}

func suffix(s string) string {
	if len(s) <= 4 {
		return s
	}
	return "..." + s[len(s)-4:]
}

// --- HTTP control API ------------------------------------------------------------------------------

func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return false
	}
	return true
}

func controlError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, ErrNotFound) {
		status = http.StatusNotFound
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func (s *Server) ctlListCharges(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Charges())
}

func (s *Server) ctlGetCharge(w http.ResponseWriter, r *http.Request) {
	c, ok := s.Charge(r.PathValue("orderId"))
	if !ok {
		controlError(w, fmt.Errorf("%w: order", ErrNotFound))
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) ctlPlant(w http.ResponseWriter, r *http.Request) {
	var p Plant
	if !decodeControl(w, r, &p) {
		return
	}
	c, err := s.Plant(r.PathValue("orderId"), p)
	if err != nil {
		controlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) ctlListKeys(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.BillingKeys())
}

type behaviorIn struct {
	Behavior string `json:"behavior"`
}

func (s *Server) ctlKeyBehavior(w http.ResponseWriter, r *http.Request) {
	var in behaviorIn
	if !decodeControl(w, r, &in) {
		return
	}
	if err := s.SetBehavior(r.PathValue("billingKey"), in.Behavior); err != nil {
		controlError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) ctlCustomerBehavior(w http.ResponseWriter, r *http.Request) {
	var in behaviorIn
	if !decodeControl(w, r, &in) {
		return
	}
	if err := s.SetCustomerBehavior(r.PathValue("customerKey"), in.Behavior); err != nil {
		controlError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) ctlKeyFaults(w http.ResponseWriter, r *http.Request) {
	var f ChargeFaults
	if !decodeControl(w, r, &f) {
		return
	}
	s.SetBillingKeyFaults(r.PathValue("billingKey"), f)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) ctlGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Faults())
}

func (s *Server) ctlSetFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if !decodeControl(w, r, &f) {
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, s.Faults())
}

func (s *Server) ctlClearFaults(w http.ResponseWriter, _ *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) ctlWebhooks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Webhooks())
}

func (s *Server) ctlReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}
