// Package clock is the one source of "now" for domain code.
//
// Billing decisions (what is due, when a retry runs, when grace ends) read a Clock, never time.Now, so a
// persisted test clock can move months of billing through in seconds (like Stripe test clocks).
package clock

import (
	"sync"
	"time"
)

// Clock tells the domain what time it is.
type Clock interface {
	Now() time.Time
}

// Recent is Now for bookkeeping on a hot path (a webhook's receipt stamp): a clock that reads the
// database may answer with a value it read within maxAge of wall time instead of queueing for one of its
// connections behind busy workers. Clocks that answer from memory just answer.
func Recent(c Clock, maxAge time.Duration) time.Time {
	if r, ok := c.(interface{ Recent(time.Duration) time.Time }); ok {
		return r.Recent(maxAge)
	}
	return c.Now()
}

// System is the wall clock, in UTC.
type System struct{}

// Now returns the wall-clock time in UTC.
func (System) Now() time.Time { return time.Now().UTC() }

// Fixed is a settable clock for tests.
type Fixed struct {
	mu  sync.Mutex
	now time.Time
}

// NewFixed returns a clock stopped at t.
func NewFixed(t time.Time) *Fixed { return &Fixed{now: t.UTC()} }

// Now returns the clock's current time.
func (f *Fixed) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Set moves the clock to t.
func (f *Fixed) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t.UTC()
}

// Advance moves the clock forward by d.
func (f *Fixed) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}
