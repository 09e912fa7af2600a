package pgsim

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// Currencies are the currencies pgsim charges in. Toss billing approves KRW only and its charge has no
// currency field; pgsim reads an optional `currency` (default KRW) so a suite can exercise two-decimal
// amounts. Anything else is refused as Toss refuses a request it cannot take: 400 INVALID_REQUEST.
var Currencies = []string{"KRW", "USD", "EUR", "JPY"}

// orderIDPattern is Toss's rule for orderId: 6 to 64 of [A-Za-z0-9_-]. Enforced so an id the real
// gateway would refuse fails in tests first.
var orderIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{6,64}$`)

const (
	alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	hexUp = "0123456789ABCDEF"
)

// randString draws n characters from alphabet. Must be called with the lock held.
func (s *Server) randString(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[s.rng.IntN(len(alphabet))]
	}
	return string(b)
}

// --- idempotency -------------------------------------------------------------------------------------

// idemBegin claims the request's Idempotency-Key. It returns the key ("" when none was sent) and whether
// the request was already answered (a replay, a mismatch or a still-running original).
func (s *Server) idemBegin(w http.ResponseWriter, r *http.Request, body []byte) (string, bool) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return "", false
	}
	h := sha256.New()
	h.Write([]byte(r.Method + " " + r.URL.Path + "\n"))
	h.Write(body)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))

	s.mu.Lock()
	e, ok := s.idem[key]
	if !ok {
		s.idem[key] = &idemEntry{hash: sum, pending: true}
		s.mu.Unlock()
		return key, false
	}
	pending, status, stored := e.pending, e.status, e.body
	same := e.hash == sum
	s.mu.Unlock()
	switch {
	case !same:
		writeError(w, http.StatusUnprocessableEntity, "INVALID_REQUEST", "Idempotency-Key was used with a different request")
	case pending:
		writeError(w, http.StatusConflict, "IDEMPOTENT_REQUEST_PROCESSING", "이전 멱등 요청이 처리 중입니다.")
	default:
		w.Header().Set("Idempotent-Replayed", "true")
		writeRaw(w, status, stored)
	}
	return key, true
}

// idemFinishLocked stores the final answer for key. Must be called with the lock held.
func (s *Server) idemFinishLocked(key string, status int, body []byte) {
	if key == "" {
		return
	}
	if e := s.idem[key]; e != nil {
		e.pending, e.status, e.body = false, status, body
	}
}

// idemAbandonLocked forgets key, for answers that left no trace (so a resend runs again).
func (s *Server) idemAbandonLocked(key string) {
	if key != "" {
		delete(s.idem, key)
	}
}

// respondLocked stores the answer under key and returns it for writing after unlock.
func (s *Server) finish(w http.ResponseWriter, key string, status int, body []byte) {
	s.mu.Lock()
	s.idemFinishLocked(key, status, body)
	s.mu.Unlock()
	writeRaw(w, status, body)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshaled here
	}
	return b
}

// --- issue -------------------------------------------------------------------------------------------

func (s *Server) handleIssue(w http.ResponseWriter, r *http.Request) {
	raw, err := readBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", err.Error())
		return
	}
	var in struct {
		AuthKey     string `json:"authKey"`
		CustomerKey string `json:"customerKey"`
	}
	if json.Unmarshal(raw, &in) != nil || in.AuthKey == "" || in.CustomerKey == "" {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "authKey and customerKey are required")
		return
	}
	key, done := s.idemBegin(w, r, raw)
	if done {
		return
	}
	if r, refused := issueRefusal(in.AuthKey); refused {
		s.finish(w, key, r.Status, errorBody(r.Code, r.Message))
		return
	}
	behavior, flaky := behaviorFromAuthKey(in.AuthKey)
	s.mu.Lock()
	reg := s.auths[in.AuthKey]
	if reg != nil && reg.customerKey != in.CustomerKey {
		// An authKey from the registration page belongs to the customerKey it was made for, as at Toss.
		r, _ := issueRefusal("authkey-customer")
		s.mu.Unlock()
		s.finish(w, key, r.Status, errorBody(r.Code, r.Message))
		return
	}
	if reg != nil {
		behavior, flaky = reg.behavior, reg.flaky
	}
	ik := in.CustomerKey + "\x00" + in.AuthKey
	bk := s.keys[s.issued[ik]]
	if bk == nil {
		issuers := []string{"41", "61", "51", "11", "71", "4V"}
		bk = &BillingKey{
			BillingKey:  "bk_sim_" + s.randString(alnum, 32),
			CustomerKey: in.CustomerKey,
			AuthKey:     in.AuthKey,
			Behavior:    behavior,
			FlakyLeft:   flaky,
			Issuer:      issuers[s.rng.IntN(len(issuers))],
			Number:      "433012******" + strconv.Itoa(100+s.rng.IntN(900)) + "*",
		}
		if reg != nil {
			bk.Number = reg.number
		}
		s.keys[bk.BillingKey] = bk
		s.issued[ik] = bk.BillingKey
		s.log.Debug("pgsim billing key issued", "customer_key", in.CustomerKey, "behavior", behavior)
	}
	card := cardView{IssuerCode: bk.Issuer, AcquirerCode: bk.Issuer, Number: bk.Number, CardType: "신용", OwnerType: "개인"}
	body := mustJSON(issueView{MID: mid, CustomerKey: bk.CustomerKey, AuthenticatedAt: fmtTime(s.now()), Method: "카드",
		BillingKey: bk.BillingKey, CardCompany: issuerNames[bk.Issuer], CardNumber: bk.Number, Card: card})
	s.idemFinishLocked(key, http.StatusOK, body)
	s.mu.Unlock()
	writeRaw(w, http.StatusOK, body)
}

// --- delete billing key ------------------------------------------------------------------------------

// handleDeleteKey deletes a billing key (DELETE /v1/billing/{billingKey}): later charges on it are refused
// as for a key never issued (404 NOT_FOUND), and deleting it again is 404 too. A per-key
// error_5xx_before_commit fault fails the deletion before it happens, as it fails a charge.
func (s *Server) handleDeleteKey(w http.ResponseWriter, r *http.Request) {
	bkID := r.PathValue("billingKey")
	s.mu.Lock()
	kf := s.faults.keyRules(bkID)
	if kf.Error5xxBeforeCommit.fire(s.rng) {
		s.mu.Unlock()
		writeError(w, http.StatusInternalServerError, "FAILED_INTERNAL_SYSTEM_PROCESSING", "simulated error before commit")
		return
	}
	bk := s.keys[bkID]
	if bk == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "NOT_FOUND_BILLING_KEY", "존재하지 않는 빌링키 입니다.")
		return
	}
	d := DeletedKey{BillingKey: bkID, CustomerKey: bk.CustomerKey, DeletedAt: s.now()}
	delete(s.keys, bkID)
	s.deleted[bkID] = d
	s.mu.Unlock()
	s.log.Debug("pgsim billing key deleted", "customer_key", d.CustomerKey)
	writeJSON(w, http.StatusOK, map[string]string{"billingKey": bkID, "customerKey": d.CustomerKey, "deletedAt": fmtTime(d.DeletedAt)})
}

// --- charge ------------------------------------------------------------------------------------------

type chargeIn struct {
	CustomerKey   string `json:"customerKey"`
	Amount        num    `json:"amount"`
	OrderID       string `json:"orderId"`
	OrderName     string `json:"orderName"`
	CustomerEmail string `json:"customerEmail"`
	CustomerName  string `json:"customerName"`
	Currency      string `json:"currency"`
	TaxFreeAmount num    `json:"taxFreeAmount"`
}

// commitFault is what happens to a charge's answer after the ledger decision.
type commitFault int

const (
	noFault commitFault = iota
	faultTimeout
	fault5xxAfter
	faultProcessing
)

func (s *Server) handleCharge(w http.ResponseWriter, r *http.Request) {
	bkID := r.PathValue("billingKey")
	raw, err := readBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", err.Error())
		return
	}
	var in chargeIn
	if err := json.Unmarshal(raw, &in); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "malformed body: "+err.Error())
		return
	}
	amt := decimal.Decimal(in.Amount)
	if in.Currency == "" {
		in.Currency = "KRW"
	}
	switch {
	case !orderIDPattern.MatchString(in.OrderID):
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "orderId must be 6-64 characters of A-Z a-z 0-9 - _")
		return
	case !amt.IsPositive():
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "amount must be positive")
		return
	case in.CustomerKey == "" || in.OrderName == "":
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "customerKey and orderName are required")
		return
	case !slices.Contains(Currencies, in.Currency):
		// Toss billing is KRW only and takes no currency field; pgsim's extension takes a few more.
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "지원하지 않는 통화입니다: "+in.Currency)
		return
	}
	key, done := s.idemBegin(w, r, raw)
	if done {
		return
	}

	s.mu.Lock()
	now := s.now()
	bk := s.keys[bkID]
	switch {
	case bk == nil:
		s.idemFinishLocked(key, http.StatusNotFound, errorBody("NOT_FOUND", "존재하지 않는 정보 입니다."))
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "NOT_FOUND", "존재하지 않는 정보 입니다.")
		return
	case bk.CustomerKey != in.CustomerKey:
		body := errorBody("NOT_MATCHES_CUSTOMER_KEY", "빌링 인증 고객키와 결제 요청 고객키가 일치하지 않습니다.")
		s.idemFinishLocked(key, http.StatusBadRequest, body)
		s.mu.Unlock()
		writeRaw(w, http.StatusBadRequest, body)
		return
	case s.byOrder[in.OrderID] != nil:
		body := errorBody("DUPLICATED_ORDER_ID", "이미 승인 및 취소가 진행된 중복된 주문번호 입니다.")
		s.idemFinishLocked(key, http.StatusBadRequest, body)
		s.mu.Unlock()
		writeRaw(w, http.StatusBadRequest, body)
		return
	}
	kf := s.faults.keyRules(bkID)
	if kf.Error5xxBeforeCommit.fire(s.rng) || s.faults.Error5xxBeforeCommit.fire(s.rng) {
		s.idemAbandonLocked(key)
		s.mu.Unlock()
		writeError(w, http.StatusInternalServerError, "FAILED_INTERNAL_SYSTEM_PROCESSING", "simulated error before commit")
		return
	}

	c := &charge{Charge: Charge{
		OrderID: in.OrderID, OrderName: in.OrderName, PaymentKey: "sim_" + s.randString(alnum, 28),
		BillingKey: bkID, CustomerKey: in.CustomerKey, Amount: amt, BalanceAmount: amt,
		Currency: in.Currency, RequestedAt: now, TaxFreeAmount: decimal.Decimal(in.TaxFreeAmount),
	}}
	if d, declined := s.declineLocked(bk); declined {
		c.Status = "ABORTED"
		c.failure = &tossError{Code: d.code, Message: d.msg}
		s.failed[in.OrderID] = c
		body := errorBody(d.code, d.msg)
		s.idemFinishLocked(key, d.status, body)
		hook := s.webhookLocked(c)
		s.mu.Unlock()
		s.hooks.deliver(hook)
		writeRaw(w, d.status, body)
		return
	}

	fault := noFault
	var hang time.Duration
	var processingDelay time.Duration
	switch {
	case kf.Processing.fireP(s.rng) || s.faults.Processing.fireP(s.rng):
		fault = faultProcessing
		processingDelay = 50 * time.Millisecond
		for _, p := range []*ProcessingFault{kf.Processing, s.faults.Processing} {
			if p != nil && p.DelayMs > 0 {
				processingDelay = time.Duration(p.DelayMs) * time.Millisecond
				break
			}
		}
	case kf.CommitThenTimeout.fireP(s.rng) || s.faults.CommitThenTimeout.fireP(s.rng):
		fault = faultTimeout
		for _, p := range []*CommitThenTimeoutFault{kf.CommitThenTimeout, s.faults.CommitThenTimeout} {
			if p != nil && p.HangMs > 0 {
				hang = time.Duration(p.HangMs) * time.Millisecond
				break
			}
		}
	case kf.Error5xxAfterCommit.fire(s.rng) || s.faults.Error5xxAfterCommit.fire(s.rng):
		fault = fault5xxAfter
	}

	s.byOrder[c.OrderID] = c
	s.byPayment[c.PaymentKey] = c
	delete(s.failed, c.OrderID)
	if fault == faultProcessing {
		c.Status = "IN_PROGRESS"
		gen := s.gen
		s.mu.Unlock()
		time.AfterFunc(processingDelay, func() { s.commitLater(gen, c, key) })
		writeError(w, http.StatusConflict, "IDEMPOTENT_REQUEST_PROCESSING", "결제가 처리 중입니다. (simulated)")
		return
	}
	body := s.commitLocked(c, key)
	hook := s.webhookLocked(c)
	s.mu.Unlock()
	s.hooks.deliver(hook)

	switch fault {
	case faultTimeout:
		loseAnswer(w, r, hang)
	case fault5xxAfter:
		writeError(w, http.StatusInternalServerError, "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING", "simulated error after commit")
	default:
		writeRaw(w, http.StatusOK, body)
	}
}

// declineLocked applies the key's behavior: whether this charge is refused, and how.
func (s *Server) declineLocked(bk *BillingKey) (decline, bool) {
	if d, ok := declines[bk.Behavior]; ok {
		return d, true
	}
	if bk.FlakyLeft > 0 {
		bk.FlakyLeft--
		return flakyDecline, true
	}
	return decline{}, false
}

// commitLocked books c as DONE and returns the 200 answer, stored under the idempotency key.
func (s *Server) commitLocked(c *charge, key string) []byte {
	c.Status = "DONE"
	c.ApprovedAt = s.now()
	t := &txn{key: s.randString(hexUp, 32), paymentKey: c.PaymentKey, orderID: c.OrderID, status: "DONE",
		at: c.ApprovedAt, currency: c.Currency, amount: c.Amount}
	c.lastTxKey, c.doneTx = t.key, t
	s.txns = append(s.txns, t)
	s.ordered = append(s.ordered, c)
	body := mustJSON(s.view(c))
	s.idemFinishLocked(key, http.StatusOK, body)
	return body
}

// commitLater finishes a charge held by a "processing" fault, unless Reset came in between.
func (s *Server) commitLater(gen uint64, c *charge, key string) {
	s.mu.Lock()
	if s.gen != gen || c.Status != "IN_PROGRESS" {
		s.mu.Unlock()
		return
	}
	s.commitLocked(c, key)
	hook := s.webhookLocked(c)
	s.mu.Unlock()
	s.hooks.deliver(hook)
}

// loseAnswer commits nothing more: it sends the status line and headers of a 200, part of the body, and
// closes the connection, after waiting hang (or until the client gives up). The client has its answer's
// first bytes, so net/http does not transparently resend the request; it sees a truncated body instead,
// exactly like a response lost mid-flight.
func loseAnswer(w http.ResponseWriter, r *http.Request, hang time.Duration) {
	if hang > 0 {
		t := time.NewTimer(hang)
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"paymentKey\":")
	_ = buf.Flush()
}

// --- lookup ------------------------------------------------------------------------------------------

func (s *Server) handleLookupOrder(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("orderId")
	s.mu.Lock()
	c := s.byOrder[id]
	if c == nil {
		c = s.failed[id]
	}
	if c == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다.")
		return
	}
	s.lookups[id]++
	v := s.view(c)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) handleLookupPayment(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	c := s.byPayment[r.PathValue("paymentKey")]
	if c == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다.")
		return
	}
	s.lookups[c.OrderID]++
	v := s.view(c)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, v)
}

// --- cancel ------------------------------------------------------------------------------------------

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	raw, err := readBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", err.Error())
		return
	}
	var in struct {
		CancelReason string `json:"cancelReason"`
		CancelAmount *num   `json:"cancelAmount"`
	}
	if json.Unmarshal(raw, &in) != nil || in.CancelReason == "" {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "cancelReason is required")
		return
	}
	key, done := s.idemBegin(w, r, raw)
	if done {
		return
	}
	s.mu.Lock()
	c := s.byPayment[r.PathValue("paymentKey")]
	fail := func(status int, code, msg string) {
		body := errorBody(code, msg)
		s.idemFinishLocked(key, status, body)
		s.mu.Unlock()
		writeRaw(w, status, body)
	}
	switch {
	case c == nil:
		fail(http.StatusNotFound, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다.")
		return
	case c.Status == "CANCELED":
		fail(http.StatusBadRequest, "ALREADY_CANCELED_PAYMENT", "이미 취소된 결제 입니다.")
		return
	case c.Status != "DONE" && c.Status != "PARTIAL_CANCELED":
		fail(http.StatusForbidden, "NOT_CANCELABLE_PAYMENT", "취소 할 수 없는 결제 입니다.")
		return
	}
	amt := c.BalanceAmount
	if in.CancelAmount != nil {
		amt = decimal.Decimal(*in.CancelAmount)
	}
	if !amt.IsPositive() || amt.GreaterThan(c.BalanceAmount) {
		fail(http.StatusForbidden, "NOT_CANCELABLE_AMOUNT", "취소 할 수 없는 금액 입니다.")
		return
	}
	cf := ChargeFaults{}
	if s.faults.Cancels != nil {
		cf = *s.faults.Cancels
	}
	if f := cf.RateLimit429; f != nil && f.fire(s.rng) {
		s.idemAbandonLocked(key)
		s.mu.Unlock()
		ra := f.RetryAfterSeconds
		if ra <= 0 {
			ra = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(ra))
		writeError(w, http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "simulated rate limit")
		return
	}
	if cf.Error5xxBeforeCommit.fire(s.rng) {
		s.idemAbandonLocked(key)
		s.mu.Unlock()
		writeError(w, http.StatusInternalServerError, "FAILED_INTERNAL_SYSTEM_PROCESSING", "simulated error before cancel")
		return
	}
	fault, hang := noFault, time.Duration(0)
	processingDelay := 50 * time.Millisecond
	switch {
	case cf.Processing.fireP(s.rng):
		fault = faultProcessing
		if cf.Processing.DelayMs > 0 {
			processingDelay = time.Duration(cf.Processing.DelayMs) * time.Millisecond
		}
	case cf.CommitThenTimeout.fireP(s.rng):
		fault, hang = faultTimeout, time.Duration(cf.CommitThenTimeout.HangMs)*time.Millisecond
	case cf.Error5xxAfterCommit.fire(s.rng):
		fault = fault5xxAfter
	}
	var delay time.Duration
	if cf.Latency != nil && cf.Latency.fire(s.rng) {
		delay = time.Duration(cf.Latency.Ms) * time.Millisecond
	}
	if fault == faultProcessing {
		// Reserve the amount now (a second cancel cannot take it) and book it later, like a charge held
		// in processing: until then the payment's cancels do not show it.
		c.BalanceAmount = c.BalanceAmount.Sub(amt)
		gen := s.gen
		s.mu.Unlock()
		time.AfterFunc(processingDelay, func() {
			s.mu.Lock()
			if s.gen != gen {
				s.mu.Unlock()
				return
			}
			c.BalanceAmount = c.BalanceAmount.Add(amt)
			s.bookCancelLocked(c, amt, in.CancelReason, key)
			hook := s.webhookLocked(c)
			s.mu.Unlock()
			s.hooks.deliver(hook)
		})
		writeError(w, http.StatusConflict, "IDEMPOTENT_REQUEST_PROCESSING", "취소가 처리 중입니다. (simulated)")
		return
	}
	body := s.bookCancelLocked(c, amt, in.CancelReason, key)
	hook := s.webhookLocked(c)
	s.mu.Unlock()
	s.hooks.deliver(hook)
	if delay > 0 {
		time.Sleep(delay)
	}
	switch fault {
	case faultTimeout:
		loseAnswer(w, r, hang)
	case fault5xxAfter:
		writeError(w, http.StatusInternalServerError, "FAILED_INTERNAL_SYSTEM_PROCESSING", "simulated error after cancel")
	default:
		writeRaw(w, http.StatusOK, body)
	}
}

// bookCancelLocked cancels amt of c (a CANCELED or PARTIAL_CANCELED transaction and a cancels entry) and
// stores the 200 answer under key. Must be called with the lock held.
func (s *Server) bookCancelLocked(c *charge, amt decimal.Decimal, reason, key string) []byte {
	now := s.now()
	c.BalanceAmount = c.BalanceAmount.Sub(amt)
	c.Status = "PARTIAL_CANCELED"
	if c.BalanceAmount.IsZero() {
		c.Status = "CANCELED"
	}
	t := &txn{key: s.randString(hexUp, 32), paymentKey: c.PaymentKey, orderID: c.OrderID, status: c.Status,
		at: now, currency: c.Currency, amount: amt}
	s.txns = append(s.txns, t)
	c.lastTxKey = t.key
	c.Cancels = append(c.Cancels, Cancel{TransactionKey: t.key, Amount: amt, Reason: reason, CanceledAt: now})
	body := mustJSON(s.view(c))
	s.idemFinishLocked(key, http.StatusOK, body)
	return body
}

// --- transactions ------------------------------------------------------------------------------------

// handleTransactions lists transactions with start <= transactionAt <= end, in booking order, paged by
// startingAfter (a transactionKey) and limit (default 100, max 10000), like Toss. Dates without an offset
// are Korean time.
func (s *Server) handleTransactions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, err1 := parseQueryTime(q.Get("startDate"))
	end, err2 := parseQueryTime(q.Get("endDate"))
	if err1 != nil || err2 != nil {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "startDate and endDate are required (yyyy-MM-ddTHH:mm:ss)")
		return
	}
	limit := 100
	if l := q.Get("limit"); l != "" {
		v, err := strconv.Atoi(l)
		if err != nil || v < 1 || v > 10000 {
			writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "limit must be 1-10000")
			return
		}
		limit = v
	}
	after := q.Get("startingAfter")
	out := []txnView{}
	s.mu.Lock()
	skipping := after != ""
	for _, t := range s.txns {
		if skipping {
			if t.key == after {
				skipping = false
			}
			continue
		}
		if t.at.Before(start) || t.at.After(end) {
			continue
		}
		c := s.byPayment[t.paymentKey]
		cust := ""
		if c != nil {
			cust = c.CustomerKey
		}
		out = append(out, txnView{MID: mid, TransactionKey: t.key, PaymentKey: t.paymentKey, OrderID: t.orderID,
			Method: "카드", CustomerKey: cust, Status: t.status, TransactionAt: fmtTime(t.at),
			Currency: t.currency, Amount: num(t.amount)})
		if len(out) == limit {
			break
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}
