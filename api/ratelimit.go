package api

import (
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/dunningworks/billing/internal/apperr"
)

// rateLimiter is a token bucket per caller (Principal.Scope): a steady rate of requests per second with a
// burst of one second's worth. x/time/rate does the bucket arithmetic; this type only keeps one bucket
// per token and forgets idle ones.
type rateLimiter struct {
	limit rate.Limit
	burst int
	// idle is how long a bucket must be unused before it is dropped. A bucket unused for burst/rate is
	// full again, and a new bucket starts full, so dropping it then changes nobody's allowance.
	idle time.Duration
	now  func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// newRateLimiter returns nil (no limit) when perSecond is not positive.
func newRateLimiter(perSecond float64, now func() time.Time) *rateLimiter {
	if perSecond <= 0 || math.IsNaN(perSecond) || math.IsInf(perSecond, 0) {
		return nil
	}
	burst := max(1, int(math.Ceil(perSecond)))
	full := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &rateLimiter{limit: rate.Limit(perSecond), burst: burst, idle: max(full, time.Minute), now: now,
		buckets: map[string]*bucket{}, lastSweep: now()}
}

// take spends one token of scope's bucket, or says how long until one is available.
func (l *rateLimiter) take(scope string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.idle {
		for k, b := range l.buckets {
			if now.Sub(b.seen) >= l.idle {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	b, found := l.buckets[scope]
	if !found {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[scope] = b
	}
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (l *rateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// rateLimit answers 429 with Retry-After (whole seconds, at least 1) when the caller's bucket is empty.
// It runs after authenticate, so the bucket is the token's, and before idempotency, so a refused request
// never claims a key.
func (s *Server) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.limiter == nil {
			next.ServeHTTP(w, r)
			return
		}
		p, _ := PrincipalFrom(r.Context())
		if ok, wait := s.limiter.take(p.Scope); !ok {
			secs := max(1, int(math.Ceil(wait.Seconds())))
			writeError(w, r, &apperr.Error{Kind: apperr.KindRateLimited, Code: "rate_limited",
				Message: "too many requests for this API key; retry after the Retry-After delay",
				Extra:   map[string]any{"retry_after_seconds": secs}})
			return
		}
		next.ServeHTTP(w, r)
	})
}
