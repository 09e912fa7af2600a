package testenv

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/gateway/pgsim"
)

var seq atomic.Int64

func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e9, seq.Add(1))
}

// CreatePlan creates a plan and returns its id.
func (e *Env) CreatePlan(amount, currency, interval string, count int) string {
	e.T.Helper()
	res := e.Do("POST", "/v1/plans", AdminToken, map[string]any{"code": unique("plan"), "name": "Plan " + amount + " " + currency,
		"amount": amount, "currency": currency, "interval": interval, "interval_count": count})
	require.Equal(e.T, 201, res.Status, string(res.Body))
	return res.JSON(e.T)["id"].(string)
}

// CreateCustomer creates a customer and returns its id.
func (e *Env) CreateCustomer() string {
	e.T.Helper()
	ext := unique("cus")
	res := e.Do("POST", "/v1/customers", ServiceToken, map[string]any{"external_id": ext, "email": ext + "@example.com", "name": "Customer " + ext})
	require.Equal(e.T, 201, res.Status, string(res.Body))
	return res.JSON(e.T)["id"].(string)
}

// AddKey registers a sim billing key whose card behaves as authKey says (ok, insufficient, stolen,
// expired, flaky-N) and returns its id.
func (e *Env) AddKey(customerID, authKey string) string {
	e.T.Helper()
	res := e.Do("POST", "/v1/customers/"+customerID+"/billing-keys", ServiceToken,
		map[string]any{"gateway": "sim", "auth_key": authKey + "-" + unique("k"), "customer_key": "ck-" + customerID})
	require.Equal(e.T, 201, res.Status, string(res.Body))
	return res.JSON(e.T)["id"].(string)
}

// Customer creates a customer with a billing key of the given behavior.
func (e *Env) Customer(behavior string) string {
	e.T.Helper()
	c := e.CreateCustomer()
	e.AddKey(c, behavior)
	return c
}

// Subscribe creates a subscription and returns the raw answer.
func (e *Env) Subscribe(customerID, planID string) Response {
	e.T.Helper()
	return e.Do("POST", "/v1/subscriptions", ServiceToken, map[string]any{"customer_id": customerID, "plan_id": planID})
}

// Subscription reads a subscription.
func (e *Env) Subscription(id string) map[string]any {
	e.T.Helper()
	res := e.Do("GET", "/v1/subscriptions/"+id, ServiceToken, nil)
	require.Equal(e.T, 200, res.Status, string(res.Body))
	return res.JSON(e.T)
}

// Now reads the test clock.
func (e *Env) Now() time.Time {
	e.T.Helper()
	res := e.Do("GET", "/v1/test-clock", AdminToken, nil)
	require.Equal(e.T, 200, res.Status, string(res.Body))
	var c struct {
		Now time.Time `json:"now"`
	}
	res.Decode(e.T, &c)
	return c.Now
}

// AdvanceTo moves the test clock forward to t and returns the new time.
func (e *Env) AdvanceTo(t time.Time) time.Time {
	e.T.Helper()
	res := e.Do("POST", "/v1/test-clock/advance", AdminToken, map[string]any{"to": t.UTC().Format(time.RFC3339Nano)})
	require.Equal(e.T, 200, res.Status, string(res.Body))
	var c struct {
		Now time.Time `json:"now"`
	}
	res.Decode(e.T, &c)
	return c.Now
}

// RenewalAt is when a subscription next renews, read from the subscription itself: months differ in length,
// so a test never computes it from a fixed number of hours.
func (e *Env) RenewalAt(subID string) time.Time {
	e.T.Helper()
	at, err := time.Parse(time.RFC3339, e.Subscription(subID)["next_renewal_at"].(string))
	require.NoError(e.T, err)
	return at
}

// AdvanceToRenewal moves the test clock to the subscription's next renewal plus offset (which may be
// negative: "an hour before").
func (e *Env) AdvanceToRenewal(subID string, offset time.Duration) time.Time {
	e.T.Helper()
	return e.AdvanceTo(e.RenewalAt(subID).Add(offset))
}

// Advance moves the test clock forward by d (a Go duration) and returns the new time.
func (e *Env) Advance(d string) time.Time {
	e.T.Helper()
	res := e.Do("POST", "/v1/test-clock/advance", AdminToken, map[string]any{"by": d})
	require.Equal(e.T, 200, res.Status, string(res.Body))
	var c struct {
		Now time.Time `json:"now"`
	}
	res.Decode(e.T, &c)
	return c.Now
}

// RequireBalanced asserts the trial balance is zero in every currency.
func (e *Env) RequireBalanced() {
	e.T.Helper()
	res := e.Do("GET", "/v1/ledger/trial-balance", AdminToken, nil)
	require.Equal(e.T, 200, res.Status)
	require.Equal(e.T, true, res.JSON(e.T)["balanced"], "trial balance: %s", res.Body)
	// And from the entries themselves, independent of the endpoint's arithmetic.
	var unbalanced int
	require.NoError(e.T, e.App.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM (SELECT currency FROM ledger_entries GROUP BY currency HAVING sum(amount) <> 0) u`).Scan(&unbalanced))
	require.Zero(e.T, unbalanced)
}

// Sim is the embedded simulator (the gateway's side of every charge).
func (e *Env) Sim() *pgsim.Server {
	e.T.Helper()
	require.NotNil(e.T, e.App.Sim, "this Env uses an external pgsim")
	return e.App.Sim
}

// ChargesAtGateway counts pgsim's committed charges per order id prefix (an invoice id).
func (e *Env) ChargesAtGateway() map[string]int {
	out := map[string]int{}
	for _, c := range e.Sim().Charges() {
		out[c.OrderID]++
	}
	return out
}

// QueryInt runs a counting query.
func (e *Env) QueryInt(sql string, args ...any) int {
	e.T.Helper()
	var n int
	require.NoError(e.T, e.App.Pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// LoseAnswer leaves the request stored under an Idempotency-Key as a process killed after its commit and
// before its answer was stored leaves it: in progress, the lock lapsed, no answer. It returns how many keys
// it changed.
func (e *Env) LoseAnswer(idempotencyKey string) int {
	e.T.Helper()
	return e.QueryInt(`WITH u AS (UPDATE idempotency_keys SET status = 'in_progress', response_status = NULL,
		response_body = NULL, response_headers = NULL, completed_at = NULL, locked_until = now() - interval '1 second'
		WHERE key = $1 RETURNING 1) SELECT count(*) FROM u`, idempotencyKey)
}
