package guard

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/shopspring/decimal"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/dunningworks/billing/gateway"
)

// Breaker states, as State reports them.
const (
	StateClosed   = "closed"
	StateOpen     = "open"
	StateHalfOpen = "half-open"
)

// Causes of a refusal, carried in TryLaterError.Cause and passed to Config.OnRefused.
const (
	CauseCircuitOpen  = "circuit_open"
	CauseRateLimited  = "rate_limited"
	CauseBulkheadFull = "bulkhead_full"
)

// Defaults for zero Config fields.
const (
	DefaultMaxRateWait     = 100 * time.Millisecond
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 30 * time.Second
)

// Config sets the protection of one gateway. Zero values disable a limit or take the defaults above.
type Config struct {
	// MaxConcurrent caps calls in flight to the gateway (bulkhead); 0 means no cap. A call waits for a
	// slot as long as its ctx allows.
	MaxConcurrent int
	// RatePerSecond refills the token bucket; 0 means no rate limit. Burst is the bucket size (at least 1).
	RatePerSecond float64
	Burst         int
	// MaxRateWait is the longest a call waits for a token; if the bucket needs longer (or ctx ends
	// sooner) the call is refused with the wait as RetryAfter. 0 means DefaultMaxRateWait.
	MaxRateWait time.Duration
	// Timeout bounds each call to the gateway, after the waits above; 0 means only ctx bounds it.
	Timeout time.Duration
	// BreakerFailures consecutive Unknown outcomes or errors of Charge/Lookup open the circuit; 0 means
	// DefaultBreakerFailures.
	BreakerFailures int
	// BreakerCooldown is how long the circuit stays open before one probe call is let through; 0 means
	// DefaultBreakerCooldown.
	BreakerCooldown time.Duration

	// OnStateChange, when set, is told every breaker transition (for metrics and logs). It runs under the
	// breaker's lock: keep it quick and never call back into the Gateway.
	OnStateChange func(name gateway.Name, from, to string)
	// OnRefused, when set, is told every call refused without reaching the gateway, with its cause.
	OnRefused func(name gateway.Name, method, cause string)
	// OnMerchantRefusal, when set, is told every call the gateway refused for a merchant-side reason (our
	// credentials, contract or request: a Refused outcome or a *gateway.MerchantError), with the
	// gateway's code. Nothing but an operator can fix those, so they feed an alert.
	OnMerchantRefusal func(name gateway.Name, method, code string)
}

// Gateway decorates a gateway.Gateway with a bulkhead, a token-bucket rate limit, a circuit breaker and
// a per-call timeout. It is safe for concurrent use and implements gateway.Gateway.
type Gateway struct {
	inner   gateway.Gateway
	cfg     Config
	sem     chan struct{}
	limiter *rate.Limiter
	breaker *gobreaker.CircuitBreaker[gateway.Outcome]

	mu       sync.Mutex
	openedAt time.Time
}

var _ gateway.Gateway = (*Gateway)(nil)

// errUnknownOutcome and errCallerGaveUp carry a call's verdict into the breaker; they never leave Gateway.
var (
	errUnknownOutcome = errors.New("unknown outcome")
	errCallerGaveUp   = errors.New("caller canceled")
)

// Wrap returns inner behind the protections of cfg.
func Wrap(inner gateway.Gateway, cfg Config) *Gateway {
	if cfg.MaxRateWait <= 0 {
		cfg.MaxRateWait = DefaultMaxRateWait
	}
	if cfg.BreakerFailures <= 0 {
		cfg.BreakerFailures = DefaultBreakerFailures
	}
	if cfg.BreakerCooldown <= 0 {
		cfg.BreakerCooldown = DefaultBreakerCooldown
	}
	g := &Gateway{inner: inner, cfg: cfg}
	if cfg.MaxConcurrent > 0 {
		g.sem = make(chan struct{}, cfg.MaxConcurrent)
	}
	if cfg.RatePerSecond > 0 {
		g.limiter = rate.NewLimiter(rate.Limit(cfg.RatePerSecond), max(cfg.Burst, 1))
	}
	failures := uint32(cfg.BreakerFailures)
	g.breaker = gobreaker.NewCircuitBreaker[gateway.Outcome](gobreaker.Settings{
		Name:        string(inner.Name()),
		MaxRequests: 1, // one probe in half-open; the rest are refused until it answers
		Timeout:     cfg.BreakerCooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		// A refusal by the gateway's own rate limit, or a caller that gave up, says nothing about the
		// gateway's health: neither a success nor a failure.
		IsExcluded: func(err error) bool {
			return errors.Is(err, gateway.ErrTryLater) || errors.Is(err, errCallerGaveUp)
		},
		OnStateChange: g.stateChanged,
	})
	return g
}

func (g *Gateway) stateChanged(_ string, from, to gobreaker.State) {
	if to == gobreaker.StateOpen {
		g.mu.Lock()
		g.openedAt = time.Now()
		g.mu.Unlock()
	}
	if g.cfg.OnStateChange != nil {
		g.cfg.OnStateChange(g.inner.Name(), from.String(), to.String())
	}
}

// State returns the breaker state: StateClosed, StateOpen or StateHalfOpen.
func (g *Gateway) State() string { return g.breaker.State().String() }

// InFlight returns the number of calls holding a bulkhead slot (0 without a bulkhead).
func (g *Gateway) InFlight() int { return len(g.sem) }

// Name returns the inner gateway's name.
func (g *Gateway) Name() gateway.Name { return g.inner.Name() }

// SupportsCurrency is the inner gateway's answer: a local question, no protection applies.
func (g *Gateway) SupportsCurrency(currency string) bool { return g.inner.SupportsCurrency(currency) }

// Charge charges through all protections. When the circuit is open, the rate limit is spent or the
// bulkhead stays full until ctx ends, it returns a *gateway.TryLaterError and the inner gateway is not
// called: the request was certainly not sent.
func (g *Gateway) Charge(ctx context.Context, req gateway.ChargeRequest) (gateway.Outcome, error) {
	return g.outcomeCall(ctx, "charge", func(ctx context.Context) (gateway.Outcome, error) {
		return g.inner.Charge(ctx, req)
	})
}

// Lookup looks up through all protections; it feeds and obeys the breaker like Charge.
func (g *Gateway) Lookup(ctx context.Context, orderID string) (gateway.Outcome, error) {
	return g.outcomeCall(ctx, "lookup", func(ctx context.Context) (gateway.Outcome, error) {
		return g.inner.Lookup(ctx, orderID)
	})
}

// IssueBillingKey is refused while the circuit is open and otherwise passes the rate limit, bulkhead and
// timeout. It does not feed the breaker: its failures are mostly about the card, not the gateway.
func (g *Gateway) IssueBillingKey(ctx context.Context, customerKey, authKey string) (gateway.IssuedKey, error) {
	var out gateway.IssuedKey
	err := g.plainCall(ctx, "issue_billing_key", func(ctx context.Context) error {
		var err error
		out, err = g.inner.IssueBillingKey(ctx, customerKey, authKey)
		return err
	})
	return out, err
}

// Cancel is protected like IssueBillingKey.
func (g *Gateway) Cancel(ctx context.Context, paymentKey, reason string, amount decimal.Decimal, idempotencyKey string) error {
	return g.plainCall(ctx, "cancel", func(ctx context.Context) error {
		return g.inner.Cancel(ctx, paymentKey, reason, amount, idempotencyKey)
	})
}

// DeleteBillingKey is protected like IssueBillingKey.
func (g *Gateway) DeleteBillingKey(ctx context.Context, key gateway.BillingKeyToken, customerKey string) error {
	return g.plainCall(ctx, "delete_billing_key", func(ctx context.Context) error {
		return g.inner.DeleteBillingKey(ctx, key, customerKey)
	})
}

// Transactions is protected like IssueBillingKey.
func (g *Gateway) Transactions(ctx context.Context, from, to time.Time) ([]gateway.Transaction, error) {
	var out []gateway.Transaction
	err := g.plainCall(ctx, "transactions", func(ctx context.Context) error {
		var err error
		out, err = g.inner.Transactions(ctx, from, to)
		return err
	})
	return out, err
}

// ParseWebhook is inbound and local: no protection applies.
func (g *Gateway) ParseWebhook(r *http.Request) (gateway.Event, error) {
	return g.inner.ParseWebhook(r)
}

// outcomeCall runs a Charge or Lookup: breaker check, token, bulkhead slot, then the call under the
// breaker with the per-call timeout.
func (g *Gateway) outcomeCall(ctx context.Context, method string, call func(context.Context) (gateway.Outcome, error)) (gateway.Outcome, error) {
	if err := g.refuseIfOpen(method); err != nil {
		return gateway.Outcome{}, err
	}
	release, err := g.admit(ctx, method)
	if err != nil {
		return gateway.Outcome{}, err
	}
	defer release()

	out, err := g.breaker.Execute(func() (gateway.Outcome, error) {
		callCtx, cancel := g.withTimeout(ctx)
		defer cancel()
		out, err := call(callCtx)
		switch {
		case ctx.Err() != nil && (err != nil || out.Kind == gateway.Unknown):
			return out, callerGaveUp{err: err}
		case err != nil:
			return out, err
		case out.Kind == gateway.Unknown:
			return out, errUnknownOutcome
		}
		return out, nil
	})
	if err == nil && out.Kind == gateway.Refused {
		g.merchantRefusal(method, out.DeclineCode)
	}
	var gaveUp callerGaveUp
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return gateway.Outcome{}, g.refused(method, CauseCircuitOpen, g.cooldownLeft())
	case errors.Is(err, errUnknownOutcome):
		return out, nil
	case errors.As(err, &gaveUp):
		return out, gaveUp.err
	}
	return out, err
}

// callerGaveUp marks a failed call whose caller's ctx had already ended: the failure is the caller's, not
// the gateway's, so the breaker excludes it. err is the inner gateway's error, if any.
type callerGaveUp struct{ err error }

func (c callerGaveUp) Error() string        { return "caller gave up" }
func (c callerGaveUp) Is(target error) bool { return target == errCallerGaveUp }

// plainCall runs a call that obeys an open circuit but does not feed the breaker.
func (g *Gateway) plainCall(ctx context.Context, method string, call func(context.Context) error) error {
	if err := g.refuseIfOpen(method); err != nil {
		return err
	}
	release, err := g.admit(ctx, method)
	if err != nil {
		return err
	}
	defer release()
	callCtx, cancel := g.withTimeout(ctx)
	defer cancel()
	err = call(callCtx)
	var me *gateway.MerchantError
	if errors.As(err, &me) {
		g.merchantRefusal(method, me.Code)
	}
	return err
}

func (g *Gateway) merchantRefusal(method, code string) {
	if g.cfg.OnMerchantRefusal != nil {
		g.cfg.OnMerchantRefusal(g.inner.Name(), method, code)
	}
}

func (g *Gateway) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.cfg.Timeout > 0 {
		return context.WithTimeout(ctx, g.cfg.Timeout)
	}
	return context.WithCancel(ctx)
}

// refuseIfOpen answers at once while the circuit is open, before a token or a slot is spent on a call
// the breaker would refuse anyway.
func (g *Gateway) refuseIfOpen(method string) error {
	if g.breaker.State() == gobreaker.StateOpen {
		return g.refused(method, CauseCircuitOpen, g.cooldownLeft())
	}
	return nil
}

func (g *Gateway) cooldownLeft() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.openedAt.IsZero() {
		return g.cfg.BreakerCooldown
	}
	return max(g.cfg.BreakerCooldown-time.Since(g.openedAt), 0)
}

// admit takes a rate token and a bulkhead slot, or refuses. The release func frees the slot.
func (g *Gateway) admit(ctx context.Context, method string) (release func(), err error) {
	if err := g.waitToken(ctx, method); err != nil {
		return nil, err
	}
	if g.sem == nil {
		return func() {}, nil
	}
	select {
	case g.sem <- struct{}{}:
	default:
		// Waiting for a slot is the point of a bulkhead; only the caller's ctx ends the wait.
		select {
		case g.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, g.refused(method, CauseBulkheadFull, 0)
		}
	}
	return func() { <-g.sem }, nil
}

func (g *Gateway) waitToken(ctx context.Context, method string) error {
	if g.limiter == nil {
		return nil
	}
	r := g.limiter.Reserve()
	if !r.OK() {
		return g.refused(method, CauseRateLimited, 0)
	}
	delay := r.Delay()
	if delay == 0 {
		return nil
	}
	limit := g.cfg.MaxRateWait
	if dl, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(dl))
	}
	if delay > limit {
		r.Cancel() // give the token back for calls that can wait for it
		return g.refused(method, CauseRateLimited, delay)
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return g.refused(method, CauseRateLimited, delay)
	}
}

func (g *Gateway) refused(method, cause string, retryAfter time.Duration) error {
	if g.cfg.OnRefused != nil {
		g.cfg.OnRefused(g.inner.Name(), method, cause)
	}
	return &gateway.TryLaterError{Gateway: g.inner.Name(), RetryAfter: retryAfter, Cause: cause}
}
