package api

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
)

type testClockResponse struct {
	Enabled bool      `json:"enabled"`
	Now     time.Time `json:"now"`
}

type advanceRequest struct {
	To *time.Time `json:"to"`
	By *string    `json:"by"`
}

func (s *Server) mountTestClock(r chi.Router) {
	r.With(allow()).Get("/v1/test-clock", s.getTestClock)
	r.With(allow()).Post("/v1/test-clock/advance", s.advanceTestClock)
}

func (s *Server) getTestClock(w http.ResponseWriter, r *http.Request) {
	if s.TestClock == nil {
		writeError(w, r, testClockDisabled())
		return
	}
	writeJSON(w, http.StatusOK, testClockResponse{Enabled: true, Now: s.TestClock.Now()})
}

func (s *Server) advanceTestClock(w http.ResponseWriter, r *http.Request) {
	if s.TestClock == nil {
		writeError(w, r, testClockDisabled())
		return
	}
	var req advanceRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	now := s.TestClock.Now()
	var target time.Time
	switch {
	case req.To != nil && req.By != nil:
		writeError(w, r, apperr.Invalid("to", "give either to or by, not both"))
		return
	case req.To != nil:
		target = req.To.UTC()
	case req.By != nil:
		d, err := time.ParseDuration(*req.By)
		if err != nil {
			writeError(w, r, apperr.Invalid("by", "must be a Go duration like 720h or 90m"))
			return
		}
		if d < 0 {
			writeError(w, r, apperr.Invalid("by", "the test clock only moves forward"))
			return
		}
		target = now.Add(d)
	default:
		writeError(w, r, apperr.Invalid("to", "give to (RFC 3339) or by (duration)"))
		return
	}
	if target.Before(now) {
		writeError(w, r, apperr.Invalid("to", "%s is before the clock's now %s: the test clock only moves forward",
			target.Format(time.RFC3339), now.Format(time.RFC3339)))
		return
	}
	var moved time.Time
	var err error
	if s.ClockAdvancer != nil {
		moved, err = s.ClockAdvancer.Advance(r.Context(), target)
	} else {
		moved, err = s.TestClock.Advance(r.Context(), target)
	}
	if errors.Is(err, clock.ErrBackwards) {
		writeError(w, r, apperr.Invalid("to", "%v", err))
		return
	}
	if err != nil {
		writeError(w, r, advanceStopped(err, s.TestClock.Now(), target))
		return
	}
	writeJSON(w, http.StatusOK, testClockResponse{Enabled: true, Now: moved})
}

func testClockDisabled() error {
	return &apperr.Error{Kind: apperr.KindNotFound, Code: "test_clock_disabled",
		Message: "the test clock is disabled; start billingd with BILLING_TEST_CLOCK=1"}
}

// advanceStopped says how far an advance that failed got: the clock stays wherever the last completed
// step left it (every step is committed), and an advance to the same target resumes from there. A
// relative advance ({by}) retried would count from the new now, hence the answer names the absolute
// target to retry with.
func advanceStopped(err error, reached, target time.Time) error {
	msg := fmt.Sprintf("the advance stopped at %s, before %s; retry with {\"to\": %q} to finish it from there",
		reached.UTC().Format(time.RFC3339Nano), target.UTC().Format(time.RFC3339Nano), target.UTC().Format(time.RFC3339Nano))
	extra := map[string]any{"now": reached.UTC(), "target": target.UTC()}
	if e, ok := apperr.As(err); ok {
		out := *e
		out.Message = e.Message + "; " + msg
		out.Extra = maps.Clone(e.Extra)
		if out.Extra == nil {
			out.Extra = map[string]any{}
		}
		maps.Copy(out.Extra, extra)
		return &out
	}
	if dbx.IsUnavailable(err) {
		return &apperr.Error{Kind: apperr.KindUnavailable, Code: "service_unavailable", Message: "the database is unavailable: " + msg,
			Extra: extra, Err: err}
	}
	return err
}
