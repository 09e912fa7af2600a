package gatewaytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/gateway"
)

// Card behaviors a Bank can give the card behind an auth key.
const (
	OK           = "ok"           // charges succeed
	Insufficient = "insufficient" // soft decline
	Stolen       = "stolen"       // hard decline
	Expired      = "expired"      // hard decline
	RejectedAuth = "reject"       // the auth key itself is refused at issuance
)

// Flaky is the behavior whose first n charges are soft-declined and later ones succeed.
func Flaky(n int) string { return fmt.Sprintf("flaky-%d", n) }

// Fault is a failure the Bank can inject into the next charge.
type Fault string

const (
	FaultCommitThenTimeout Fault = "commit_then_timeout" // charge committed, answer lost
	Fault5xxBeforeCommit   Fault = "error_5xx_before_commit"
	Fault5xxAfterCommit    Fault = "error_5xx_after_commit"
	FaultProcessing        Fault = "processing"     // "still processing"; the charge commits shortly after
	FaultRateLimit         Fault = "rate_limit_429" // throttled before anything is processed
	FaultOutage            Fault = "outage"         // every request fails until ClearFaults
)

// ErrUnsupported is returned by a Bank for a fault or behavior it cannot produce; the case is skipped.
var ErrUnsupported = errors.New("gatewaytest: not supported by this bank")

// BankCharge is a charge as the gateway's own ledger has it.
type BankCharge struct {
	OrderID    string
	PaymentKey string
	Status     string
	Amount     decimal.Decimal
	Currency   string
}

// Bank is the gateway's side of the test: it makes cards, injects faults and shows its ledger.
type Bank interface {
	// AuthKey returns a fresh auth key whose card will behave as behavior once issued.
	AuthKey(behavior string) (string, error)
	// Inject arranges for the next charge to hit f (FaultOutage: every request until ClearFaults).
	Inject(f Fault) error
	// ClearFaults removes every injected fault.
	ClearFaults() error
	// Charges returns the charges the gateway committed for orderID.
	Charges(orderID string) ([]BankCharge, error)
	// WebhookRequest returns the inbound webhook request the gateway would send for orderID's payment.
	WebhookRequest(orderID string) (*http.Request, error)
}

// Env is one isolated adapter-plus-bank for one contract case.
type Env struct {
	Gateway gateway.Gateway
	Bank    Bank
	// Currency and Amount of test charges; default KRW 9900.
	Currency string
	Amount   decimal.Decimal
	// Now is the bank's clock, for Transactions windows; default time.Now.
	Now func() time.Time
	// Eventually bounds waits for asynchronous resolution (processing); default 3 s.
	Eventually time.Duration
}

type runner struct {
	t   *testing.T
	env Env
	ctx context.Context
}

func newRunner(t *testing.T, newEnv func(t *testing.T) Env) *runner {
	env := newEnv(t)
	require.NotNil(t, env.Gateway, "Env.Gateway")
	require.NotNil(t, env.Bank, "Env.Bank")
	if env.Currency == "" {
		env.Currency = "KRW"
	}
	if env.Amount.IsZero() {
		env.Amount = decimal.NewFromInt(9900)
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Eventually == 0 {
		env.Eventually = 3 * time.Second
	}
	return &runner{t: t, env: env, ctx: t.Context()}
}

func newID(prefix string) string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

type card struct {
	key      gateway.IssuedKey
	customer string
}

func (r *runner) issue(behavior string) card {
	r.t.Helper()
	auth, err := r.env.Bank.AuthKey(behavior)
	if errors.Is(err, ErrUnsupported) {
		r.t.Skipf("bank cannot make a %q card", behavior)
	}
	require.NoError(r.t, err)
	cust := newID("cust")
	key, err := r.env.Gateway.IssueBillingKey(r.ctx, cust, auth)
	require.NoError(r.t, err, "issue %s card", behavior)
	require.False(r.t, key.Token.IsZero())
	return card{key: key, customer: cust}
}

func (r *runner) request(c card) gateway.ChargeRequest {
	return gateway.ChargeRequest{
		BillingKey:     c.key.Token,
		CustomerKey:    c.customer,
		OrderID:        newID("ord"),
		IdempotencyKey: newID("idem"),
		Amount:         r.env.Amount,
		Currency:       r.env.Currency,
		OrderName:      "contract test",
	}
}

func (r *runner) charge(req gateway.ChargeRequest) gateway.Outcome {
	r.t.Helper()
	out, err := r.env.Gateway.Charge(r.ctx, req)
	require.NoError(r.t, err, "charge %s", req.OrderID)
	return out
}

func (r *runner) lookup(orderID string) gateway.Outcome {
	r.t.Helper()
	out, err := r.env.Gateway.Lookup(r.ctx, orderID)
	require.NoError(r.t, err, "lookup %s", orderID)
	return out
}

func (r *runner) inject(f Fault) {
	r.t.Helper()
	err := r.env.Bank.Inject(f)
	if errors.Is(err, ErrUnsupported) {
		r.t.Skipf("bank cannot inject %s", f)
	}
	require.NoError(r.t, err)
}

func (r *runner) bankCharges(orderID string) []BankCharge {
	r.t.Helper()
	cs, err := r.env.Bank.Charges(orderID)
	require.NoError(r.t, err)
	return cs
}

// requireOneCharge checks that the bank holds exactly one charge for the order, with the paid amount and
// (when known) the payment key the adapter reported.
func (r *runner) requireOneCharge(orderID, paymentKey string) {
	r.t.Helper()
	cs := r.bankCharges(orderID)
	require.Len(r.t, cs, 1, "bank charges for %s", orderID)
	require.True(r.t, cs[0].Amount.Equal(r.env.Amount), "bank amount %s, want %s", cs[0].Amount, r.env.Amount)
	if paymentKey != "" {
		require.Equal(r.t, paymentKey, cs[0].PaymentKey)
	}
}

func requireSucceeded(t *testing.T, out gateway.Outcome, env Env) {
	t.Helper()
	require.Equal(t, gateway.Succeeded, out.Kind, "outcome: %+v", out)
	require.NotEmpty(t, out.PaymentKey)
	require.False(t, out.ApprovedAt.IsZero(), "ApprovedAt")
	require.True(t, out.Amount.Equal(env.Amount), "amount %s, want %s", out.Amount, env.Amount)
	require.Equal(t, env.Currency, out.Currency)
}

func requireDeclined(t *testing.T, out gateway.Outcome, class gateway.DeclineClass) {
	t.Helper()
	require.Equal(t, gateway.Declined, out.Kind, "outcome: %+v", out)
	require.Equal(t, class, out.DeclineClass, "decline class of %s", out.DeclineCode)
	require.NotEmpty(t, out.DeclineCode)
}

// RunContract runs the gateway contract. newEnv is called once per case and must return an isolated
// environment (its own bank state), so cases run in parallel.
func RunContract(t *testing.T, newEnv func(t *testing.T) Env) {
	cases := []struct {
		name string
		run  func(r *runner)
	}{
		{"IssueAccepted", testIssueAccepted},
		{"IssueRejected", testIssueRejected},
		{"ChargeSucceeded", testChargeSucceeded},
		{"ChargeReplayedWithSameKey", testChargeReplayed},
		{"InvalidRequestIsNotSent", testInvalidRequest},
		{"SoftDecline", testSoftDecline},
		{"HardDeclines", testHardDeclines},
		{"FlakyRecovers", testFlakyRecovers},
		{"CommitThenTimeout", testCommitThenTimeout},
		{"ResendAfterCommit", testResendAfterCommit},
		{"ConcurrentResendsChargeOnce", testConcurrentResends},
		{"Error5xxBeforeCommit", test5xxBeforeCommit},
		{"Error5xxAfterCommit", test5xxAfterCommit},
		{"Processing", testProcessing},
		{"RateLimited", testRateLimited},
		{"Outage", testOutage},
		{"LookupNotFound", testLookupNotFound},
		{"Cancel", testCancel},
		{"Transactions", testTransactions},
		{"Webhook", testWebhook},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(newRunner(t, newEnv))
		})
	}
}

func testIssueAccepted(r *runner) {
	c := r.issue(OK)
	require.NotEmpty(r.t, c.key.Card.MaskedNumber)
	require.NotContains(r.t, fmt.Sprintf("%v %+v %#v", c.key, c.key, c.key), c.key.Token.Reveal(), "token leaks when printed")
}

func testIssueRejected(r *runner) {
	auth, err := r.env.Bank.AuthKey(RejectedAuth)
	if errors.Is(err, ErrUnsupported) {
		r.t.Skip("bank cannot make a rejected auth key")
	}
	require.NoError(r.t, err)
	_, err = r.env.Gateway.IssueBillingKey(r.ctx, newID("cust"), auth)
	require.ErrorIs(r.t, err, gateway.ErrAuthKeyRejected)
	var de *gateway.DeclineError
	require.ErrorAs(r.t, err, &de)
	require.NotEmpty(r.t, de.Code)
}

func testChargeSucceeded(r *runner) {
	c := r.issue(OK)
	req := r.request(c)
	out := r.charge(req)
	requireSucceeded(r.t, out, r.env)
	r.requireOneCharge(req.OrderID, out.PaymentKey)

	got := r.lookup(req.OrderID)
	require.Equal(r.t, gateway.Succeeded, got.Kind)
	require.Equal(r.t, out.PaymentKey, got.PaymentKey)
	require.True(r.t, got.Amount.Equal(r.env.Amount))
}

func testChargeReplayed(r *runner) {
	c := r.issue(OK)
	req := r.request(c)
	first := r.charge(req)
	requireSucceeded(r.t, first, r.env)
	again := r.charge(req)
	requireSucceeded(r.t, again, r.env)
	require.Equal(r.t, first.PaymentKey, again.PaymentKey)
	r.requireOneCharge(req.OrderID, first.PaymentKey)
}

func testInvalidRequest(r *runner) {
	c := r.issue(OK)
	for name, mutate := range map[string]func(*gateway.ChargeRequest){
		"no order id":        func(q *gateway.ChargeRequest) { q.OrderID = "" },
		"no idempotency key": func(q *gateway.ChargeRequest) { q.IdempotencyKey = "" },
		"zero amount":        func(q *gateway.ChargeRequest) { q.Amount = decimal.Zero },
		"no billing key":     func(q *gateway.ChargeRequest) { q.BillingKey = gateway.BillingKeyToken{} },
	} {
		req := r.request(c)
		orderID := req.OrderID
		mutate(&req)
		_, err := r.env.Gateway.Charge(r.ctx, req)
		require.Error(r.t, err, name)
		require.Empty(r.t, r.bankCharges(orderID), name)
	}
}

func testSoftDecline(r *runner) {
	c := r.issue(Insufficient)
	req := r.request(c)
	requireDeclined(r.t, r.charge(req), gateway.Soft)
	require.Empty(r.t, r.bankCharges(req.OrderID))
	got := r.lookup(req.OrderID)
	require.Contains(r.t, []gateway.OutcomeKind{gateway.Declined, gateway.NotFound}, got.Kind, "lookup: %+v", got)
}

func testHardDeclines(r *runner) {
	for _, b := range []string{Stolen, Expired} {
		c := r.issue(b)
		req := r.request(c)
		requireDeclined(r.t, r.charge(req), gateway.Hard)
		require.Empty(r.t, r.bankCharges(req.OrderID), b)
	}
}

func testFlakyRecovers(r *runner) {
	const n = 2
	c := r.issue(Flaky(n))
	for i := range n {
		req := r.request(c)
		out := r.charge(req)
		requireDeclined(r.t, out, gateway.Soft)
		require.Empty(r.t, r.bankCharges(req.OrderID), "attempt %d", i+1)
	}
	req := r.request(c)
	out := r.charge(req)
	requireSucceeded(r.t, out, r.env)
	r.requireOneCharge(req.OrderID, out.PaymentKey)
}

func testCommitThenTimeout(r *runner) {
	c := r.issue(OK)
	req := r.request(c)
	r.inject(FaultCommitThenTimeout)
	out := r.charge(req)
	require.Equal(r.t, gateway.Unknown, out.Kind, "outcome: %+v", out)
	require.NotEmpty(r.t, out.Reason)

	got := r.lookup(req.OrderID)
	require.Equal(r.t, gateway.Succeeded, got.Kind, "lookup: %+v", got)
	r.requireOneCharge(req.OrderID, got.PaymentKey)
}

func testResendAfterCommit(r *runner) {
	c := r.issue(OK)
	req := r.request(c)
	r.inject(FaultCommitThenTimeout)
	require.Equal(r.t, gateway.Unknown, r.charge(req).Kind)

	// The same attempt resent unchanged: the gateway replays its stored answer.
	same := r.charge(req)
	requireSucceeded(r.t, same, r.env)
	r.requireOneCharge(req.OrderID, same.PaymentKey)

	// The same order under a new idempotency key: the gateway says "duplicate order", the adapter looks it
	// up and reports the original success instead of a decline.
	req.IdempotencyKey = newID("idem")
	dup := r.charge(req)
	requireSucceeded(r.t, dup, r.env)
	require.Equal(r.t, same.PaymentKey, dup.PaymentKey)
	r.requireOneCharge(req.OrderID, same.PaymentKey)
}

func testConcurrentResends(r *runner) {
	c := r.issue(OK)
	req := r.request(c)
	const n = 8
	outs := make([]gateway.Outcome, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		q := req
		q.IdempotencyKey = newID("idem")
		wg.Go(func() { outs[i], errs[i] = r.env.Gateway.Charge(r.ctx, q) })
	}
	wg.Wait()
	cs := r.bankCharges(req.OrderID)
	require.Len(r.t, cs, 1, "one order id, one charge")
	for i := range n {
		require.NoError(r.t, errs[i])
		switch outs[i].Kind {
		case gateway.Succeeded:
			require.Equal(r.t, cs[0].PaymentKey, outs[i].PaymentKey)
		case gateway.Unknown:
		default:
			r.t.Fatalf("concurrent resend %d: %+v", i, outs[i])
		}
	}
}

func test5xxBeforeCommit(r *runner) {
	c := r.issue(OK)
	req := r.request(c)
	r.inject(Fault5xxBeforeCommit)
	require.Equal(r.t, gateway.Unknown, r.charge(req).Kind)
	require.Equal(r.t, gateway.NotFound, r.lookup(req.OrderID).Kind)
	require.Empty(r.t, r.bankCharges(req.OrderID))

	out := r.charge(req)
	requireSucceeded(r.t, out, r.env)
	r.requireOneCharge(req.OrderID, out.PaymentKey)
}

func test5xxAfterCommit(r *runner) {
	c := r.issue(OK)
	req := r.request(c)
	r.inject(Fault5xxAfterCommit)
	require.Equal(r.t, gateway.Unknown, r.charge(req).Kind)
	got := r.lookup(req.OrderID)
	require.Equal(r.t, gateway.Succeeded, got.Kind, "lookup: %+v", got)
	r.requireOneCharge(req.OrderID, got.PaymentKey)
}

func testProcessing(r *runner) {
	c := r.issue(OK)
	req := r.request(c)
	r.inject(FaultProcessing)
	out := r.charge(req)
	require.Equal(r.t, gateway.Unknown, out.Kind, "outcome: %+v", out)

	// Poll like the reconciler: Unknown until the gateway finishes, then a definite answer.
	var got gateway.Outcome
	deadline := time.Now().Add(r.env.Eventually)
	for {
		got = r.lookup(req.OrderID)
		if got.Kind != gateway.Unknown && got.Kind != gateway.NotFound || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(r.t, gateway.Succeeded, got.Kind, "lookup after processing: %+v", got)
	r.requireOneCharge(req.OrderID, got.PaymentKey)
}

func testRateLimited(r *runner) {
	c := r.issue(OK)
	req := r.request(c)
	r.inject(FaultRateLimit)
	_, err := r.env.Gateway.Charge(r.ctx, req)
	require.ErrorIs(r.t, err, gateway.ErrTryLater)
	var tl *gateway.TryLaterError
	require.ErrorAs(r.t, err, &tl)
	require.Equal(r.t, r.env.Gateway.Name(), tl.Gateway)
	require.Empty(r.t, r.bankCharges(req.OrderID), "a throttled charge is not processed")

	out := r.charge(req)
	requireSucceeded(r.t, out, r.env)
	r.requireOneCharge(req.OrderID, out.PaymentKey)
}

func testOutage(r *runner) {
	c := r.issue(OK)
	req := r.request(c)
	r.inject(FaultOutage)
	out, err := r.env.Gateway.Charge(r.ctx, req)
	if err != nil {
		require.ErrorIs(r.t, err, gateway.ErrTryLater)
	} else {
		require.Equal(r.t, gateway.Unknown, out.Kind, "an outage is never a decline: %+v", out)
	}
	lk, err := r.env.Gateway.Lookup(r.ctx, req.OrderID)
	if err != nil {
		require.ErrorIs(r.t, err, gateway.ErrTryLater)
	} else {
		require.Equal(r.t, gateway.Unknown, lk.Kind, "a lookup during an outage proves nothing: %+v", lk)
	}

	require.NoError(r.t, r.env.Bank.ClearFaults())
	require.Equal(r.t, gateway.NotFound, r.lookup(req.OrderID).Kind)
	ok := r.charge(req)
	requireSucceeded(r.t, ok, r.env)
	r.requireOneCharge(req.OrderID, ok.PaymentKey)
}

func testLookupNotFound(r *runner) {
	got := r.lookup(newID("never"))
	require.Equal(r.t, gateway.NotFound, got.Kind, "lookup: %+v", got)
}

func testCancel(r *runner) {
	c := r.issue(OK)
	req := r.request(c)
	out := r.charge(req)
	requireSucceeded(r.t, out, r.env)

	key := newID("cancel")
	require.NoError(r.t, r.env.Gateway.Cancel(r.ctx, out.PaymentKey, "duplicate charge", decimal.Zero, key))
	// A resend of the same cancel is the same cancel, not an error and not a second refund.
	require.NoError(r.t, r.env.Gateway.Cancel(r.ctx, out.PaymentKey, "duplicate charge", decimal.Zero, key))

	got := r.lookup(req.OrderID)
	require.Equal(r.t, gateway.Canceled, got.Kind, "lookup: %+v", got)
	require.Equal(r.t, out.PaymentKey, got.PaymentKey)
	cs := r.bankCharges(req.OrderID)
	require.Len(r.t, cs, 1)
	require.Equal(r.t, "CANCELED", strings.ToUpper(cs[0].Status))

	// A second, different cancel of a fully canceled payment is refused.
	require.Error(r.t, r.env.Gateway.Cancel(r.ctx, out.PaymentKey, "again", decimal.Zero, newID("cancel")))
}

func testTransactions(r *runner) {
	c := r.issue(OK)
	var orders []string
	for range 2 {
		req := r.request(c)
		requireSucceeded(r.t, r.charge(req), r.env)
		orders = append(orders, req.OrderID)
	}
	now := r.env.Now()
	txs, err := r.env.Gateway.Transactions(r.ctx, now.Add(-time.Hour), now.Add(time.Hour))
	require.NoError(r.t, err)
	seen := map[string]gateway.Transaction{}
	for _, tx := range txs {
		seen[tx.OrderID] = tx
	}
	for _, o := range orders {
		tx, ok := seen[o]
		require.True(r.t, ok, "order %s missing from the transaction list", o)
		require.True(r.t, tx.Amount.Equal(r.env.Amount))
		require.Equal(r.t, r.env.Currency, tx.Currency)
		require.NotEmpty(r.t, tx.PaymentKey)
		require.False(r.t, tx.At.IsZero())
	}

	later, err := r.env.Gateway.Transactions(r.ctx, now.Add(time.Hour), now.Add(2*time.Hour))
	require.NoError(r.t, err)
	for _, tx := range later {
		require.NotContains(r.t, orders, tx.OrderID, "window [now+1h, now+2h) must exclude charges made now")
	}
}

func testWebhook(r *runner) {
	c := r.issue(OK)
	req := r.request(c)
	requireSucceeded(r.t, r.charge(req), r.env)

	hr, err := r.env.Bank.WebhookRequest(req.OrderID)
	if errors.Is(err, ErrUnsupported) {
		r.t.Skip("bank cannot produce webhooks")
	}
	require.NoError(r.t, err)
	ev, err := r.env.Gateway.ParseWebhook(hr)
	require.NoError(r.t, err)
	require.Equal(r.t, gateway.PaymentStatusChanged, ev.Kind)
	require.Equal(r.t, req.OrderID, ev.OrderID)
	require.NotEmpty(r.t, ev.ID)
	require.NotEmpty(r.t, ev.Raw)

	// A redelivery of the same event has the same ID, so the inbox dedupes it.
	again := httptest.NewRequest(http.MethodPost, hr.URL.String(), strings.NewReader(string(ev.Raw)))
	again.Header = hr.Header.Clone()
	ev2, err := r.env.Gateway.ParseWebhook(again)
	require.NoError(r.t, err)
	require.Equal(r.t, ev.ID, ev2.ID)

	bad := httptest.NewRequest(http.MethodPost, hr.URL.String(), strings.NewReader("{not json"))
	bad.Header = hr.Header.Clone()
	_, err = r.env.Gateway.ParseWebhook(bad)
	require.Error(r.t, err)
}
