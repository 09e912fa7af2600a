package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeNow) add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

func TestRateLimitPerTokenWithRetryAfter(t *testing.T) {
	t.Parallel()
	clk := &fakeNow{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := New(Deps{RateLimit: 2, Bootstrap: []BootstrapToken{{Role: RoleAdmin, Token: "adm_rl_a_0123456789"},
		{Role: RoleAdmin, Token: "adm_rl_b_0123456789"}}})
	s.limiter = newRateLimiter(2, clk.now)
	get := func(token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/v1/test-clock", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec
	}
	// The burst is one second's worth: two requests pass (404: the test clock is off), the third waits.
	require.Equal(t, 404, get("adm_rl_a_0123456789").Code)
	require.Equal(t, 404, get("adm_rl_a_0123456789").Code)
	res := get("adm_rl_a_0123456789")
	require.Equal(t, 429, res.Code)
	require.Equal(t, "application/problem+json", res.Header().Get("Content-Type"))
	require.Equal(t, "1", res.Header().Get("Retry-After"))
	var p map[string]any
	require.NoError(t, json.Unmarshal(res.Body.Bytes(), &p))
	require.Equal(t, "rate_limited", p["code"])
	require.EqualValues(t, 429, p["status"])

	// Another token has its own bucket.
	require.Equal(t, 404, get("adm_rl_b_0123456789").Code)
	// A refused request does not spend a token: half a second refills exactly one.
	clk.add(500 * time.Millisecond)
	require.Equal(t, 404, get("adm_rl_a_0123456789").Code)
	require.Equal(t, 429, get("adm_rl_a_0123456789").Code)
	// Health checks are not limited.
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	require.Equal(t, 200, rec.Code)
}

func TestRateLimitRetryAfterIsWholeSecondsRoundedUp(t *testing.T) {
	t.Parallel()
	clk := &fakeNow{t: time.Unix(0, 0)}
	s := New(Deps{RateLimit: 0.25, Bootstrap: []BootstrapToken{{Role: RoleAdmin, Token: "adm_rl_c_0123456789"}}})
	s.limiter = newRateLimiter(0.25, clk.now) // one request per 4 s, burst 1
	retryAfter := func() string {
		req := httptest.NewRequest(http.MethodGet, "/v1/test-clock", nil)
		req.Header.Set("Authorization", "Bearer adm_rl_c_0123456789")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec.Header().Get("Retry-After")
	}
	require.Empty(t, retryAfter())
	require.Equal(t, "4", retryAfter())
	clk.add(3500 * time.Millisecond)
	require.Equal(t, "1", retryAfter(), "half a second left is still a whole second")
	clk.add(500 * time.Millisecond)
	require.Empty(t, retryAfter())
}

func TestRateLimitForgetsIdleBuckets(t *testing.T) {
	t.Parallel()
	clk := &fakeNow{t: time.Unix(0, 0)}
	l := newRateLimiter(10, clk.now)
	for _, scope := range []string{"a", "b", "c"} {
		ok, _ := l.take(scope)
		require.True(t, ok)
	}
	require.Equal(t, 3, l.size())
	clk.add(30 * time.Second)
	l.take("a")
	require.Equal(t, 3, l.size(), "nothing is idle long enough yet")
	clk.add(31 * time.Second)
	l.take("a")
	require.Equal(t, 1, l.size(), "b and c were idle a minute; a is in use")
}

func TestRateLimitOffWhenNotPositive(t *testing.T) {
	t.Parallel()
	for _, r := range []float64{0, -1} {
		require.Nil(t, newRateLimiter(r, time.Now))
	}
}
