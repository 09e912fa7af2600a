package pgsim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/gateway/pgsim"
)

const secret = "test_sk_sim"

type bundle struct {
	sim *pgsim.Server
	srv *httptest.Server
}

func setup(t *testing.T, opts pgsim.Options) *bundle {
	t.Helper()
	if opts.SecretKey == "" {
		opts.SecretKey = secret
	}
	sim := pgsim.New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		sim.Close()
	})
	return &bundle{sim: sim, srv: srv}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (b *bundle) call(t *testing.T, method, path, idem string, in any) answer {
	t.Helper()
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		require.NoError(t, err)
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, b.srv.URL+path, body)
	require.NoError(t, err)
	req.SetBasicAuth(secret, "")
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	res, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	a := answer{status: res.StatusCode, header: res.Header, raw: raw}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func (b *bundle) issue(t *testing.T, customer, authKey string) string {
	t.Helper()
	a := b.call(t, "POST", "/v1/billing/authorizations/issue", "", map[string]string{"authKey": authKey, "customerKey": customer})
	require.Equal(t, http.StatusOK, a.status, string(a.raw))
	return a.body["billingKey"].(string)
}

func (b *bundle) charge(t *testing.T, bk, customer, orderID, idem string, amount int) answer {
	t.Helper()
	return b.call(t, "POST", "/v1/billing/"+bk, idem, map[string]any{
		"customerKey": customer, "amount": amount, "orderId": orderID, "orderName": "plan",
	})
}

func TestIssueAndChargeSpeakToss(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{Seed: 1})
	bk := b.issue(t, "cust-1", "ok-1")
	require.Regexp(t, `^bk_sim_[A-Za-z0-9]{32}$`, bk)
	require.Equal(t, bk, b.issue(t, "cust-1", "ok-1"), "the same auth key and customer get the same key")
	require.NotEqual(t, bk, b.issue(t, "cust-2", "ok-1"), "another customer gets its own key")

	a := b.charge(t, bk, "cust-1", "order-0001", "idem-1", 9900)
	require.Equal(t, http.StatusOK, a.status, string(a.raw))
	require.Equal(t, "DONE", a.body["status"])
	require.Equal(t, "order-0001", a.body["orderId"])
	require.Equal(t, float64(9900), a.body["totalAmount"])
	require.Equal(t, "BILLING", a.body["type"])
	require.Regexp(t, `\+09:00$`, a.body["approvedAt"])

	lk := b.call(t, "GET", "/v1/payments/orders/order-0001", "", nil)
	require.Equal(t, http.StatusOK, lk.status)
	require.Equal(t, a.body["paymentKey"], lk.body["paymentKey"])
	byKey := b.call(t, "GET", "/v1/payments/"+a.body["paymentKey"].(string), "", nil)
	require.Equal(t, "order-0001", byKey.body["orderId"])

	charges := b.sim.Charges()
	require.Len(t, charges, 1)
	require.Equal(t, bk, charges[0].BillingKey)
	require.Equal(t, "cust-1", charges[0].CustomerKey)
	require.True(t, charges[0].Amount.Equal(decimal.NewFromInt(9900)))
	require.Equal(t, "KRW", charges[0].Currency)

	nf := b.call(t, "GET", "/v1/payments/orders/order-nope", "", nil)
	require.Equal(t, http.StatusNotFound, nf.status)
	require.Equal(t, "NOT_FOUND_PAYMENT", nf.body["code"])
}

func TestRequestsAreChecked(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{Seed: 1})
	bk := b.issue(t, "cust-1", "ok")

	req, _ := http.NewRequest("GET", b.srv.URL+"/v1/payments/orders/order-0001", nil)
	req.SetBasicAuth("wrong", "")
	res, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)

	for name, c := range map[string]struct {
		bk, cust, order string
		amount          int
		status          int
		code            string
	}{
		"short order id":   {bk, "cust-1", "o1", 100, 400, "INVALID_REQUEST"},
		"bad order id":     {bk, "cust-1", "order:0001", 100, 400, "INVALID_REQUEST"},
		"zero amount":      {bk, "cust-1", "order-0002", 0, 400, "INVALID_REQUEST"},
		"unknown key":      {"bk_sim_nope", "cust-1", "order-0003", 100, 404, "NOT_FOUND"},
		"another customer": {bk, "cust-2", "order-0004", 100, 400, "NOT_MATCHES_CUSTOMER_KEY"},
	} {
		a := b.charge(t, c.bk, c.cust, c.order, "", c.amount)
		require.Equal(t, c.status, a.status, name)
		require.Equal(t, c.code, a.body["code"], name)
	}
	require.Empty(t, b.sim.Charges())

	refused := b.call(t, "POST", "/v1/billing/authorizations/issue", "", map[string]string{"authKey": "reject-1", "customerKey": "c"})
	require.Equal(t, http.StatusBadRequest, refused.status)
	require.Equal(t, "INVALID_BILL_KEY_REQUEST", refused.body["code"])
}

func TestBehaviors(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{Seed: 1})
	for auth, want := range map[string]struct {
		status int
		code   string
	}{
		"insufficient-1": {403, "REJECT_CARD_PAYMENT"},
		"limit-1":        {400, "EXCEED_MAX_DAILY_PAYMENT_COUNT"},
		"stolen-1":       {400, "INVALID_STOPPED_CARD"},
		"lost-1":         {400, "INVALID_CARD_LOST_OR_STOLEN"},
		"expired-1":      {400, "INVALID_CARD_EXPIRATION"},
		"blocked-1":      {400, "INVALID_REJECT_CARD"},
	} {
		cust := "cust-" + auth
		bk := b.issue(t, cust, auth)
		order := "order-" + auth
		a := b.charge(t, bk, cust, order, "", 100)
		require.Equal(t, want.status, a.status, auth)
		require.Equal(t, want.code, a.body["code"], auth)
		lk := b.call(t, "GET", "/v1/payments/orders/"+order, "", nil)
		require.Equal(t, "ABORTED", lk.body["status"], auth)
		require.Equal(t, want.code, lk.body["failure"].(map[string]any)["code"], auth)

		// The card is fixed: the same order id can now be charged.
		require.NoError(t, b.sim.SetBehavior(bk, "ok"))
		require.Equal(t, http.StatusOK, b.charge(t, bk, cust, order, "", 100).status, auth)
	}
	require.Len(t, b.sim.Charges(), 6)
}

func TestFlakyAndBehaviorControl(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{Seed: 1})
	bk := b.issue(t, "cust-1", "flaky-2-x")
	for i := range 3 {
		a := b.charge(t, bk, "cust-1", fmt.Sprintf("order-%04d", i), "", 100)
		if i < 2 {
			require.Equal(t, "REJECT_CARD_PAYMENT", a.body["code"], i)
		} else {
			require.Equal(t, http.StatusOK, a.status, i)
		}
	}

	// Over the control API: by billing key, then by customer.
	ctl := b.call(t, "POST", "/__sim/billing-keys/"+bk+"/behavior", "", map[string]string{"behavior": "stolen"})
	require.Equal(t, http.StatusNoContent, ctl.status)
	require.Equal(t, "INVALID_STOPPED_CARD", b.charge(t, bk, "cust-1", "order-0010", "", 100).body["code"])
	ctl = b.call(t, "POST", "/__sim/customers/cust-1/behavior", "", map[string]string{"behavior": "flaky-1"})
	require.Equal(t, http.StatusNoContent, ctl.status)
	require.Equal(t, "REJECT_CARD_PAYMENT", b.charge(t, bk, "cust-1", "order-0011", "", 100).body["code"])
	require.Equal(t, http.StatusOK, b.charge(t, bk, "cust-1", "order-0012", "", 100).status)

	require.Equal(t, http.StatusBadRequest, b.call(t, "POST", "/__sim/billing-keys/"+bk+"/behavior", "", map[string]string{"behavior": "nope"}).status)
	require.Equal(t, http.StatusNotFound, b.call(t, "POST", "/__sim/billing-keys/bk_x/behavior", "", map[string]string{"behavior": "ok"}).status)
	require.Equal(t, http.StatusNotFound, b.call(t, "POST", "/__sim/customers/nobody/behavior", "", map[string]string{"behavior": "ok"}).status)

	keys := b.call(t, "GET", "/__sim/billing-keys", "", nil)
	var list []pgsim.BillingKey
	require.NoError(t, json.Unmarshal(keys.raw, &list))
	require.Len(t, list, 1)
	require.Equal(t, "flaky-1", list[0].Behavior)
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{Seed: 1})
	bk := b.issue(t, "cust-1", "ok")
	first := b.charge(t, bk, "cust-1", "order-0001", "idem-1", 100)
	require.Equal(t, http.StatusOK, first.status)

	replay := b.charge(t, bk, "cust-1", "order-0001", "idem-1", 100)
	require.Equal(t, http.StatusOK, replay.status)
	require.Equal(t, first.raw, replay.raw)
	require.Equal(t, "true", replay.header.Get("Idempotent-Replayed"))

	mismatch := b.charge(t, bk, "cust-1", "order-0001", "idem-1", 200)
	require.Equal(t, http.StatusUnprocessableEntity, mismatch.status)

	dup := b.charge(t, bk, "cust-1", "order-0001", "idem-2", 100)
	require.Equal(t, http.StatusBadRequest, dup.status)
	require.Equal(t, "DUPLICATED_ORDER_ID", dup.body["code"])
	require.Len(t, b.sim.Charges(), 1)

	// A decline is an answer too: replayed, not re-decided.
	require.NoError(t, b.sim.SetBehavior(bk, "insufficient"))
	d1 := b.charge(t, bk, "cust-1", "order-0002", "idem-3", 100)
	require.NoError(t, b.sim.SetBehavior(bk, "ok"))
	d2 := b.charge(t, bk, "cust-1", "order-0002", "idem-3", 100)
	require.Equal(t, d1.raw, d2.raw)
	require.Equal(t, http.StatusForbidden, d2.status)
}

func TestCommitFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{Seed: 1})
	bk := b.issue(t, "cust-1", "ok")

	b.sim.SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{Error5xxBeforeCommit: &pgsim.Rule{Count: 1}}})
	a := b.charge(t, bk, "cust-1", "order-0001", "idem-1", 100)
	require.Equal(t, http.StatusInternalServerError, a.status)
	_, ok := b.sim.Charge("order-0001")
	require.False(t, ok)
	require.Equal(t, http.StatusOK, b.charge(t, bk, "cust-1", "order-0001", "idem-1", 100).status, "the same key runs again")

	b.sim.SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{Error5xxAfterCommit: &pgsim.Rule{Count: 1}}})
	a = b.charge(t, bk, "cust-1", "order-0002", "idem-2", 100)
	require.Equal(t, http.StatusInternalServerError, a.status)
	_, ok = b.sim.Charge("order-0002")
	require.True(t, ok)
	require.Equal(t, http.StatusOK, b.charge(t, bk, "cust-1", "order-0002", "idem-2", 100).status, "the stored answer is the commit")

	b.sim.SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{CommitThenTimeout: &pgsim.CommitThenTimeoutFault{Rule: pgsim.Rule{Count: 1}}}})
	req, _ := http.NewRequestWithContext(t.Context(), "POST", b.srv.URL+"/v1/billing/"+bk,
		bytes.NewReader([]byte(`{"customerKey":"cust-1","amount":100,"orderId":"order-0003","orderName":"p"}`)))
	req.SetBasicAuth(secret, "")
	req.Header.Set("Idempotency-Key", "idem-3")
	res, err := b.srv.Client().Do(req)
	if err == nil {
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
	}
	require.Error(t, err, "the answer is lost")
	_, ok = b.sim.Charge("order-0003")
	require.True(t, ok, "but the charge is committed")

	require.Len(t, b.sim.Charges(), 3)
	f := b.sim.Faults()
	require.Equal(t, 0, f.CommitThenTimeout.Count, "counts are consumed")
}

func TestCommitThenTimeoutCanHang(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{Seed: 1})
	bk := b.issue(t, "cust-1", "ok")
	b.sim.SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{CommitThenTimeout: &pgsim.CommitThenTimeoutFault{Rule: pgsim.Rule{Count: 1}, HangMs: 5000}}})
	client := &http.Client{Timeout: 50 * time.Millisecond}
	req, _ := http.NewRequest("POST", b.srv.URL+"/v1/billing/"+bk,
		bytes.NewReader([]byte(`{"customerKey":"cust-1","amount":100,"orderId":"order-0001","orderName":"p"}`)))
	req.SetBasicAuth(secret, "")
	start := time.Now()
	_, err := client.Do(req)
	require.Error(t, err)
	require.Less(t, time.Since(start), time.Second)
	_, ok := b.sim.Charge("order-0001")
	require.True(t, ok)
}

func TestProcessingCommitsLater(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{Seed: 1})
	bk := b.issue(t, "cust-1", "ok")
	b.sim.SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{Processing: &pgsim.ProcessingFault{Rule: pgsim.Rule{Count: 1}, DelayMs: 100}}})
	a := b.charge(t, bk, "cust-1", "order-0001", "idem-1", 100)
	require.Equal(t, http.StatusConflict, a.status)
	require.Equal(t, "IDEMPOTENT_REQUEST_PROCESSING", a.body["code"])
	require.Equal(t, "IN_PROGRESS", b.call(t, "GET", "/v1/payments/orders/order-0001", "", nil).body["status"])
	require.Equal(t, http.StatusConflict, b.charge(t, bk, "cust-1", "order-0001", "idem-1", 100).status, "the original is still running")
	require.Empty(t, b.sim.Charges())

	require.Eventually(t, func() bool { _, ok := b.sim.Charge("order-0001"); return ok }, 2*time.Second, 10*time.Millisecond)
	require.Equal(t, "DONE", b.call(t, "GET", "/v1/payments/orders/order-0001", "", nil).body["status"])
	require.Equal(t, http.StatusOK, b.charge(t, bk, "cust-1", "order-0001", "idem-1", 100).status)
}

func TestResetDropsPendingCommits(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{Seed: 1})
	bk := b.issue(t, "cust-1", "ok")
	b.sim.SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{Processing: &pgsim.ProcessingFault{Rule: pgsim.Rule{Count: 1}, DelayMs: 30}}})
	require.Equal(t, http.StatusConflict, b.charge(t, bk, "cust-1", "order-0001", "", 100).status)
	require.Equal(t, http.StatusNoContent, b.call(t, "POST", "/__sim/reset", "", nil).status)
	time.Sleep(80 * time.Millisecond)
	require.Empty(t, b.sim.Charges())
	require.Empty(t, b.sim.BillingKeys())
}

func TestRateLimitOutageAndLatency(t *testing.T) {
	t.Parallel()
	clk := clock.NewFixed(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	b := setup(t, pgsim.Options{Seed: 1, Clock: clk.Now})
	bk := b.issue(t, "cust-1", "ok")

	b.sim.SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{RateLimit429: &pgsim.RateLimitFault{Rule: pgsim.Rule{Count: 1}, RetryAfterSeconds: 3}}})
	a := b.charge(t, bk, "cust-1", "order-0001", "idem-1", 100)
	require.Equal(t, http.StatusTooManyRequests, a.status)
	require.Equal(t, "3", a.header.Get("Retry-After"))
	require.Equal(t, http.StatusOK, b.charge(t, bk, "cust-1", "order-0001", "idem-1", 100).status, "a throttled key is not consumed")

	// An outage for 1 s of simulator time, set over the control API.
	require.Equal(t, http.StatusOK, b.call(t, "POST", "/__sim/faults", "", map[string]any{"outage": map[string]int{"for_ms": 1000}}).status)
	require.Equal(t, http.StatusServiceUnavailable, b.call(t, "GET", "/v1/payments/orders/order-0001", "", nil).status)
	require.Equal(t, http.StatusServiceUnavailable, b.charge(t, bk, "cust-1", "order-0002", "", 100).status)
	clk.Advance(1001 * time.Millisecond)
	require.Equal(t, http.StatusOK, b.call(t, "GET", "/v1/payments/orders/order-0001", "", nil).status)

	b.sim.SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{Latency: &pgsim.LatencyFault{Rule: pgsim.Rule{Count: 1}, Ms: 80}}})
	start := time.Now()
	require.Equal(t, http.StatusOK, b.call(t, "GET", "/v1/payments/orders/order-0001", "", nil).status)
	require.GreaterOrEqual(t, time.Since(start), 80*time.Millisecond)

	require.Equal(t, http.StatusNoContent, b.call(t, "DELETE", "/__sim/faults", "", nil).status)
	require.Equal(t, pgsim.Faults{}, b.sim.Faults())
}

func TestPerBillingKeyFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{Seed: 1})
	sick := b.issue(t, "cust-1", "ok")
	well := b.issue(t, "cust-2", "ok")
	ctl := b.call(t, "POST", "/__sim/billing-keys/"+sick+"/faults", "", map[string]any{"error_5xx_before_commit": map[string]float64{"probability": 1}})
	require.Equal(t, http.StatusNoContent, ctl.status)
	for i := range 3 {
		require.Equal(t, http.StatusInternalServerError, b.charge(t, sick, "cust-1", fmt.Sprintf("order-s%03d", i), "", 100).status)
		require.Equal(t, http.StatusOK, b.charge(t, well, "cust-2", fmt.Sprintf("order-w%03d", i), "", 100).status)
	}
}

func TestSeededFaultsAreReproducible(t *testing.T) {
	t.Parallel()
	run := func(seed int64) (string, []string) {
		b := setup(t, pgsim.Options{Seed: seed})
		bk := b.issue(t, "cust-1", "ok")
		b.sim.SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{Error5xxBeforeCommit: &pgsim.Rule{Probability: 0.5}}})
		var pattern []string
		for i := range 40 {
			pattern = append(pattern, fmt.Sprint(b.charge(t, bk, "cust-1", fmt.Sprintf("order-%04d", i), "", 100).status))
		}
		return bk, pattern
	}
	bk1, p1 := run(42)
	bk2, p2 := run(42)
	bk3, p3 := run(43)
	require.Equal(t, bk1, bk2)
	require.Equal(t, p1, p2)
	require.NotEqual(t, bk1, bk3)
	require.NotEqual(t, p1, p3)
	require.Contains(t, p1, "200")
	require.Contains(t, p1, "500")
}

func TestCancelAndTransactions(t *testing.T) {
	t.Parallel()
	clk := clock.NewFixed(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	b := setup(t, pgsim.Options{Seed: 1, Clock: clk.Now})
	bk := b.issue(t, "cust-1", "ok")
	pk := b.charge(t, bk, "cust-1", "order-0001", "", 10000).body["paymentKey"].(string)
	clk.Advance(time.Hour)

	part := b.call(t, "POST", "/v1/payments/"+pk+"/cancel", "c1", map[string]any{"cancelReason": "partial", "cancelAmount": 4000})
	require.Equal(t, http.StatusOK, part.status, string(part.raw))
	require.Equal(t, "PARTIAL_CANCELED", part.body["status"])
	require.Equal(t, float64(6000), part.body["balanceAmount"])
	require.Len(t, part.body["cancels"], 1)

	tooMuch := b.call(t, "POST", "/v1/payments/"+pk+"/cancel", "c2", map[string]any{"cancelReason": "x", "cancelAmount": 7000})
	require.Equal(t, "NOT_CANCELABLE_AMOUNT", tooMuch.body["code"])
	rest := b.call(t, "POST", "/v1/payments/"+pk+"/cancel", "c3", map[string]any{"cancelReason": "rest"})
	require.Equal(t, "CANCELED", rest.body["status"])
	again := b.call(t, "POST", "/v1/payments/"+pk+"/cancel", "c4", map[string]any{"cancelReason": "again"})
	require.Equal(t, "ALREADY_CANCELED_PAYMENT", again.body["code"])
	replay := b.call(t, "POST", "/v1/payments/"+pk+"/cancel", "c1", map[string]any{"cancelReason": "partial", "cancelAmount": 4000})
	require.Equal(t, part.raw, replay.raw, "a resent cancel is replayed, not applied twice")
	require.Equal(t, http.StatusNotFound, b.call(t, "POST", "/v1/payments/pk_nope/cancel", "", map[string]any{"cancelReason": "x"}).status)

	c, ok := b.sim.Charge("order-0001")
	require.True(t, ok)
	require.Equal(t, "CANCELED", c.Status)
	require.Len(t, c.Cancels, 2)
	require.True(t, c.BalanceAmount.IsZero())

	// 2026-03-01T09:00 KST is 00:00 UTC, when the charge was made.
	txs := b.call(t, "GET", "/v1/transactions?startDate=2026-03-01T09:00:00&endDate=2026-03-01T10:00:00", "", nil)
	var list []map[string]any
	require.NoError(t, json.Unmarshal(txs.raw, &list))
	require.Len(t, list, 3)
	require.Equal(t, []any{"DONE", "PARTIAL_CANCELED", "CANCELED"}, []any{list[0]["status"], list[1]["status"], list[2]["status"]})
	require.Equal(t, []any{float64(10000), float64(4000), float64(6000)}, []any{list[0]["amount"], list[1]["amount"], list[2]["amount"]})

	page := b.call(t, "GET", "/v1/transactions?startDate=2026-03-01T09:00:00&endDate=2026-03-01T10:00:00&limit=1&startingAfter="+list[0]["transactionKey"].(string), "", nil)
	var next []map[string]any
	require.NoError(t, json.Unmarshal(page.raw, &next))
	require.Len(t, next, 1)
	require.Equal(t, list[1]["transactionKey"], next[0]["transactionKey"])

	early := b.call(t, "GET", "/v1/transactions?startDate=2026-03-01T00:00:00&endDate=2026-03-01T08:59:59", "", nil)
	require.JSONEq(t, `[]`, string(early.raw))
	require.Equal(t, http.StatusBadRequest, b.call(t, "GET", "/v1/transactions", "", nil).status)
}

func TestPlantForReconciliation(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{Seed: 1})
	bk := b.issue(t, "cust-1", "ok")
	require.Equal(t, http.StatusOK, b.charge(t, bk, "cust-1", "order-0001", "", 10000).status)

	altered := b.call(t, "POST", "/__sim/charges/order-0001/plant", "", map[string]any{"amount": "12000"})
	require.Equal(t, http.StatusOK, altered.status, string(altered.raw))
	planted := b.call(t, "POST", "/__sim/charges/order-ghost/plant", "", map[string]any{"amount": "500", "customerKey": "cust-1"})
	require.Equal(t, http.StatusOK, planted.status)
	require.Equal(t, http.StatusBadRequest, b.call(t, "POST", "/__sim/charges/order-x/plant", "", map[string]any{"amount": "0"}).status)

	var charges []pgsim.Charge
	require.NoError(t, json.Unmarshal(b.call(t, "GET", "/__sim/charges", "", nil).raw, &charges))
	require.Len(t, charges, 2)
	require.True(t, charges[0].Amount.Equal(decimal.NewFromInt(12000)))
	require.True(t, charges[0].Planted)
	require.Equal(t, "order-ghost", charges[1].OrderID)
	require.Equal(t, float64(12000), b.call(t, "GET", "/v1/payments/orders/order-0001", "", nil).body["totalAmount"])

	one := b.call(t, "GET", "/__sim/charges/order-ghost", "", nil)
	require.Equal(t, "order-ghost", one.body["orderId"])
	require.Equal(t, http.StatusNotFound, b.call(t, "GET", "/__sim/charges/order-none", "", nil).status)

	now := time.Now().UTC()
	q := fmt.Sprintf("/v1/transactions?startDate=%s&endDate=%s", now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	var txs []map[string]any
	require.NoError(t, json.Unmarshal(b.call(t, "GET", q, "", nil).raw, &txs))
	require.Len(t, txs, 2)
	require.Equal(t, float64(12000), txs[0]["amount"], "the gateway's line shows the altered amount")
}

func TestControlAPIRejectsBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{Seed: 1})
	require.Equal(t, http.StatusBadRequest, b.call(t, "POST", "/__sim/faults", "", map[string]any{"no_such_fault": 1}).status)
	f := b.call(t, "POST", "/__sim/faults", "", map[string]any{"processing": map[string]any{"count": 2, "delay_ms": 10}, "webhooks": map[string]any{"copies": 2}})
	require.Equal(t, http.StatusOK, f.status)
	var got pgsim.Faults
	require.NoError(t, json.Unmarshal(b.call(t, "GET", "/__sim/faults", "", nil).raw, &got))
	require.Equal(t, 2, got.Processing.Count)
	require.Equal(t, 2, *got.Webhooks.Copies)
}

func TestConcurrentChargesKeepTheLedgerExact(t *testing.T) {
	t.Parallel()
	b := setup(t, pgsim.Options{Seed: 1})
	bk := b.issue(t, "cust-1", "ok")
	const orders, resends = 50, 4
	var wg sync.WaitGroup
	for o := range orders {
		for r := range resends {
			wg.Go(func() {
				b.charge(t, bk, "cust-1", fmt.Sprintf("order-%04d", o), fmt.Sprintf("idem-%d-%d", o, r%2), 100)
			})
		}
	}
	wg.Wait()
	charges := b.sim.Charges()
	require.Len(t, charges, orders, "one charge per order id, however often and however concurrently it was sent")
	seen := map[string]bool{}
	for _, c := range charges {
		require.False(t, seen[c.OrderID])
		seen[c.OrderID] = true
	}
}

func BenchmarkCharge(b *testing.B) {
	sim := pgsim.New(pgsim.Options{Seed: 1, SecretKey: secret})
	defer sim.Close()
	issue := httptest.NewRequest("POST", "/v1/billing/authorizations/issue", bytes.NewReader([]byte(`{"authKey":"ok","customerKey":"c"}`)))
	issue.SetBasicAuth(secret, "")
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, issue)
	var k struct{ BillingKey string }
	_ = json.Unmarshal(rec.Body.Bytes(), &k)
	var n int64
	var mu sync.Mutex
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n++
			id := n
			mu.Unlock()
			body := fmt.Sprintf(`{"customerKey":"c","amount":9900,"orderId":"order-%08d","orderName":"p"}`, id)
			req := httptest.NewRequest("POST", "/v1/billing/"+k.BillingKey, bytes.NewReader([]byte(body)))
			req.SetBasicAuth(secret, "")
			req.Header.Set("Idempotency-Key", fmt.Sprintf("idem-%d", id))
			w := httptest.NewRecorder()
			sim.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}
