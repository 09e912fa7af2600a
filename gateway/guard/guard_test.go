package guard_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/guard"
)

// fakeGateway is the gateway boundary: it answers with whatever outcome the test sets and counts calls
// and calls in flight.
type fakeGateway struct {
	mu      sync.Mutex
	outcome gateway.Outcome
	err     error
	block   chan struct{} // when set, calls wait for it (or their ctx)

	calls       atomic.Int32
	inFlight    atomic.Int32
	maxInFlight atomic.Int32
	deadlines   chan time.Duration // remaining time on each call's ctx, when set
}

func (f *fakeGateway) set(o gateway.Outcome, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outcome, f.err = o, err
}

func (f *fakeGateway) answer(ctx context.Context) (gateway.Outcome, error) {
	f.calls.Add(1)
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxInFlight.Load()
		if n <= m || f.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	if f.deadlines != nil {
		if dl, ok := ctx.Deadline(); ok {
			f.deadlines <- time.Until(dl)
		} else {
			f.deadlines <- -1
		}
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return gateway.Outcome{Kind: gateway.Unknown, Reason: "timeout: " + ctx.Err().Error()}, nil
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.outcome, f.err
}

func (f *fakeGateway) Name() gateway.Name             { return "fake" }
func (f *fakeGateway) SupportsCurrency(c string) bool { return c == "KRW" }
func (f *fakeGateway) IssueBillingKey(ctx context.Context, _, _ string) (gateway.IssuedKey, error) {
	_, err := f.answer(ctx)
	return gateway.IssuedKey{}, err
}
func (f *fakeGateway) Charge(ctx context.Context, _ gateway.ChargeRequest) (gateway.Outcome, error) {
	return f.answer(ctx)
}
func (f *fakeGateway) Lookup(ctx context.Context, _ string) (gateway.Outcome, error) {
	return f.answer(ctx)
}
func (f *fakeGateway) Cancel(ctx context.Context, _, _ string, _ decimal.Decimal, _ string) error {
	_, err := f.answer(ctx)
	return err
}

func (f *fakeGateway) DeleteBillingKey(ctx context.Context, _ gateway.BillingKeyToken, _ string) error {
	_, err := f.answer(ctx)
	return err
}
func (f *fakeGateway) Transactions(ctx context.Context, _, _ time.Time) ([]gateway.Transaction, error) {
	_, err := f.answer(ctx)
	return nil, err
}
func (f *fakeGateway) ParseWebhook(*http.Request) (gateway.Event, error) { return gateway.Event{}, nil }

var (
	succeeded = gateway.Outcome{Kind: gateway.Succeeded, PaymentKey: "pay_1"}
	declined  = gateway.Outcome{Kind: gateway.Declined, DeclineCode: "insufficient_funds", DeclineClass: gateway.Soft}
	unknown   = gateway.Outcome{Kind: gateway.Unknown, Reason: "502"}
)

func charge(t *testing.T, g *guard.Gateway) (gateway.Outcome, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return g.Charge(ctx, gateway.ChargeRequest{OrderID: "ord-1", IdempotencyKey: "k"})
}

func requireTryLater(t *testing.T, err error, cause string) *gateway.TryLaterError {
	t.Helper()
	require.ErrorIs(t, err, gateway.ErrTryLater)
	var tl *gateway.TryLaterError
	require.ErrorAs(t, err, &tl)
	require.Equal(t, cause, tl.Cause)
	require.Equal(t, gateway.Name("fake"), tl.Gateway)
	return tl
}

func TestBulkheadCapsConcurrency(t *testing.T) {
	t.Parallel()
	f := &fakeGateway{outcome: succeeded, block: make(chan struct{})}
	g := guard.Wrap(f, guard.Config{MaxConcurrent: 2})

	var wg sync.WaitGroup
	results := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := charge(t, g)
			if err == nil && out.Kind != gateway.Succeeded {
				err = errors.New("unexpected " + string(out.Kind))
			}
			results <- err
		}()
	}
	require.Eventually(t, func() bool { return f.inFlight.Load() == 2 }, time.Second, time.Millisecond)
	time.Sleep(20 * time.Millisecond) // give the other four every chance to break in
	require.EqualValues(t, 2, f.inFlight.Load())
	require.Equal(t, 2, g.InFlight())
	close(f.block)
	wg.Wait()
	close(results)
	for err := range results {
		require.NoError(t, err, "waiting for a slot is fine for a bulkhead")
	}
	require.EqualValues(t, 2, f.maxInFlight.Load())
	require.EqualValues(t, 6, f.calls.Load())
}

func TestBulkheadRefusesWhenCallerCannotWait(t *testing.T) {
	t.Parallel()
	f := &fakeGateway{outcome: succeeded, block: make(chan struct{})}
	t.Cleanup(func() { close(f.block) })
	var refusedCause atomic.Value
	g := guard.Wrap(f, guard.Config{MaxConcurrent: 1, OnRefused: func(_ gateway.Name, method, cause string) {
		refusedCause.Store(method + "/" + cause)
	}})

	go func() { _, _ = g.Charge(context.Background(), gateway.ChargeRequest{}) }()
	require.Eventually(t, func() bool { return f.inFlight.Load() == 1 }, time.Second, time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := g.Charge(ctx, gateway.ChargeRequest{})
	requireTryLater(t, err, guard.CauseBulkheadFull)
	require.EqualValues(t, 1, f.calls.Load(), "the refused call never reached the gateway")
	require.Equal(t, "charge/"+guard.CauseBulkheadFull, refusedCause.Load())
}

func TestRateLimitRefusesWithRetryAfter(t *testing.T) {
	t.Parallel()
	f := &fakeGateway{outcome: succeeded}
	g := guard.Wrap(f, guard.Config{RatePerSecond: 1, Burst: 1, MaxRateWait: 10 * time.Millisecond})

	_, err := charge(t, g)
	require.NoError(t, err)
	out, err := charge(t, g)
	tl := requireTryLater(t, err, guard.CauseRateLimited)
	require.Greater(t, tl.RetryAfter, 500*time.Millisecond)
	require.LessOrEqual(t, tl.RetryAfter, time.Second)
	require.Empty(t, out.Kind, "a rate limit is never a decline")
	require.EqualValues(t, 1, f.calls.Load())
	require.Equal(t, guard.StateClosed, g.State(), "refusals do not feed the breaker")
}

func TestRateLimitWaitsBrieflyForAToken(t *testing.T) {
	t.Parallel()
	f := &fakeGateway{outcome: succeeded}
	g := guard.Wrap(f, guard.Config{RatePerSecond: 50, Burst: 1, MaxRateWait: 500 * time.Millisecond})

	start := time.Now()
	for range 3 {
		_, err := charge(t, g)
		require.NoError(t, err)
	}
	require.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond, "two refills of 20ms each")
	require.EqualValues(t, 3, f.calls.Load())
}

func TestRateLimitRespectsCallerDeadline(t *testing.T) {
	t.Parallel()
	f := &fakeGateway{outcome: succeeded}
	g := guard.Wrap(f, guard.Config{RatePerSecond: 10, Burst: 1, MaxRateWait: time.Second})
	_, err := charge(t, g)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err = g.Charge(ctx, gateway.ChargeRequest{})
	requireTryLater(t, err, guard.CauseRateLimited)
	require.EqualValues(t, 1, f.calls.Load())
}

func TestBreakerOpensAfterConsecutiveUnknownsAndRefusesWithoutCalling(t *testing.T) {
	t.Parallel()
	f := &fakeGateway{outcome: unknown}
	var transitions []string
	var mu sync.Mutex
	g := guard.Wrap(f, guard.Config{BreakerFailures: 3, BreakerCooldown: time.Minute, OnStateChange: func(_ gateway.Name, from, to string) {
		mu.Lock()
		transitions = append(transitions, from+"->"+to)
		mu.Unlock()
	}})

	for i := range 3 {
		require.Equal(t, guard.StateClosed, g.State(), "after %d unknowns", i)
		out, err := charge(t, g)
		require.NoError(t, err)
		require.Equal(t, gateway.Unknown, out.Kind, "the caller still sees the unknown outcome")
	}
	require.Equal(t, guard.StateOpen, g.State())

	f.set(succeeded, nil)
	_, err := charge(t, g)
	tl := requireTryLater(t, err, guard.CauseCircuitOpen)
	require.Greater(t, tl.RetryAfter, 50*time.Second)
	_, err = g.Lookup(context.Background(), "ord-1")
	requireTryLater(t, err, guard.CauseCircuitOpen)
	_, err = g.IssueBillingKey(context.Background(), "c", "a")
	requireTryLater(t, err, guard.CauseCircuitOpen)
	require.EqualValues(t, 3, f.calls.Load(), "an open circuit sends nothing")
	mu.Lock()
	require.Equal(t, []string{"closed->open"}, transitions)
	mu.Unlock()
}

func TestBreakerHalfOpenProbeClosesOnSuccess(t *testing.T) {
	t.Parallel()
	f := &fakeGateway{outcome: unknown}
	g := guard.Wrap(f, guard.Config{BreakerFailures: 2, BreakerCooldown: 30 * time.Millisecond})
	for range 2 {
		_, _ = charge(t, g)
	}
	require.Equal(t, guard.StateOpen, g.State())

	require.Eventually(t, func() bool { return g.State() == guard.StateHalfOpen }, time.Second, 5*time.Millisecond)
	f.set(declined, nil) // a decline proves the gateway answers
	out, err := charge(t, g)
	require.NoError(t, err)
	require.Equal(t, gateway.Declined, out.Kind)
	require.Equal(t, guard.StateClosed, g.State())
	require.EqualValues(t, 3, f.calls.Load())
}

func TestBreakerHalfOpenProbeReopensOnFailure(t *testing.T) {
	t.Parallel()
	f := &fakeGateway{outcome: unknown}
	g := guard.Wrap(f, guard.Config{BreakerFailures: 2, BreakerCooldown: 30 * time.Millisecond})
	for range 2 {
		_, _ = charge(t, g)
	}
	require.Eventually(t, func() bool { return g.State() == guard.StateHalfOpen }, time.Second, 5*time.Millisecond)
	_, err := charge(t, g)
	require.NoError(t, err)
	require.Equal(t, guard.StateOpen, g.State())
	_, err = charge(t, g)
	requireTryLater(t, err, guard.CauseCircuitOpen)
	require.EqualValues(t, 3, f.calls.Load())
}

func TestBreakerHalfOpenLetsOneProbeThrough(t *testing.T) {
	t.Parallel()
	f := &fakeGateway{outcome: unknown}
	g := guard.Wrap(f, guard.Config{BreakerFailures: 1, BreakerCooldown: 20 * time.Millisecond})
	_, _ = charge(t, g)
	require.Eventually(t, func() bool { return g.State() == guard.StateHalfOpen }, time.Second, 5*time.Millisecond)

	f.set(succeeded, nil)
	f.block = make(chan struct{})
	probe := make(chan error, 1)
	go func() { _, err := charge(t, g); probe <- err }()
	require.Eventually(t, func() bool { return f.inFlight.Load() == 1 }, time.Second, time.Millisecond)

	_, err := charge(t, g)
	requireTryLater(t, err, guard.CauseCircuitOpen)
	close(f.block)
	require.NoError(t, <-probe)
	require.Equal(t, guard.StateClosed, g.State())
	require.EqualValues(t, 2, f.calls.Load())
}

func TestDeclinesDoNotOpenTheBreaker(t *testing.T) {
	t.Parallel()
	f := &fakeGateway{outcome: declined}
	g := guard.Wrap(f, guard.Config{BreakerFailures: 2})
	for range 10 {
		out, err := charge(t, g)
		require.NoError(t, err)
		require.Equal(t, gateway.Declined, out.Kind)
	}
	require.Equal(t, guard.StateClosed, g.State())
	require.EqualValues(t, 10, f.calls.Load())
}

func TestSuccessResetsTheConsecutiveCount(t *testing.T) {
	t.Parallel()
	f := &fakeGateway{}
	g := guard.Wrap(f, guard.Config{BreakerFailures: 3})
	for range 4 {
		f.set(unknown, nil)
		_, _ = charge(t, g)
		_, _ = charge(t, g)
		f.set(succeeded, nil)
		_, _ = charge(t, g)
	}
	require.Equal(t, guard.StateClosed, g.State())
}

func TestErrorsOpenTheBreakerButGatewayRateLimitsDoNot(t *testing.T) {
	t.Parallel()
	f := &fakeGateway{err: &gateway.TryLaterError{Gateway: "fake", Cause: "429"}}
	g := guard.Wrap(f, guard.Config{BreakerFailures: 2})
	for range 5 {
		_, err := g.Lookup(context.Background(), "ord-1")
		require.ErrorIs(t, err, gateway.ErrTryLater)
	}
	require.Equal(t, guard.StateClosed, g.State(), "the gateway's own 429 says it is alive")

	authErr := errors.New("401 bad api key")
	f.set(gateway.Outcome{}, authErr)
	for range 2 {
		_, err := g.Lookup(context.Background(), "ord-1")
		require.ErrorIs(t, err, authErr)
	}
	require.Equal(t, guard.StateOpen, g.State())
}

func TestCallerCancellationDoesNotOpenTheBreaker(t *testing.T) {
	t.Parallel()
	f := &fakeGateway{outcome: succeeded, block: make(chan struct{})}
	t.Cleanup(func() { close(f.block) })
	g := guard.Wrap(f, guard.Config{BreakerFailures: 2})
	for range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		out, err := g.Charge(ctx, gateway.ChargeRequest{})
		cancel()
		require.NoError(t, err)
		require.Equal(t, gateway.Unknown, out.Kind)
	}
	require.Equal(t, guard.StateClosed, g.State())
}

func TestTimeoutIsAppliedToEachCall(t *testing.T) {
	t.Parallel()
	f := &fakeGateway{outcome: succeeded, block: make(chan struct{}), deadlines: make(chan time.Duration, 1)}
	t.Cleanup(func() { close(f.block) })
	g := guard.Wrap(f, guard.Config{Timeout: 20 * time.Millisecond, BreakerFailures: 1})

	start := time.Now()
	out, err := g.Charge(context.Background(), gateway.ChargeRequest{})
	require.NoError(t, err)
	require.Equal(t, gateway.Unknown, out.Kind, "the adapter reports its timeout as unknown")
	require.Less(t, time.Since(start), time.Second)
	left := <-f.deadlines
	require.Greater(t, left, time.Duration(0))
	require.LessOrEqual(t, left, 20*time.Millisecond)
	require.Equal(t, guard.StateOpen, g.State(), "a gateway that times out is a failing gateway")

	// Plain calls get the timeout too.
	g2 := guard.Wrap(f, guard.Config{Timeout: 20 * time.Millisecond})
	_, _ = g2.Transactions(context.Background(), time.Time{}, time.Now())
	left = <-f.deadlines
	require.Greater(t, left, time.Duration(0))
	require.LessOrEqual(t, left, 20*time.Millisecond)
}

func TestZeroConfigPassesThrough(t *testing.T) {
	t.Parallel()
	f := &fakeGateway{outcome: succeeded}
	g := guard.Wrap(f, guard.Config{})
	require.Equal(t, gateway.Name("fake"), g.Name())
	var _ gateway.Gateway = g
	for range 20 {
		out, err := charge(t, g)
		require.NoError(t, err)
		require.Equal(t, gateway.Succeeded, out.Kind)
	}
	require.NoError(t, g.Cancel(context.Background(), "p", "r", decimal.Zero, "k"))
	require.Equal(t, 0, g.InFlight())
}
