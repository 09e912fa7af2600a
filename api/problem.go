package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/statemachine"
)

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type    string              `json:"type"`
	Title   string              `json:"title"`
	Status  int                 `json:"status"`
	Detail  string              `json:"detail,omitempty"`
	Code    string              `json:"code"`
	Errors  []apperr.FieldError `json:"errors,omitempty"`
	Allowed []string            `json:"allowed,omitempty"`
	Extra   map[string]any      `json:"-"`
}

// MarshalJSON flattens Extra into the document (RFC 9457 extension members).
func (p Problem) MarshalJSON() ([]byte, error) {
	type plain Problem
	base, err := json.Marshal(plain(p))
	if err != nil || len(p.Extra) == 0 {
		return base, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(base, &m); err != nil {
		return nil, err
	}
	for k, v := range p.Extra {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

var statusByKind = map[apperr.Kind]int{
	apperr.KindNotFound:     http.StatusNotFound,
	apperr.KindConflict:     http.StatusConflict,
	apperr.KindValidation:   http.StatusUnprocessableEntity,
	apperr.KindDeclined:     http.StatusPaymentRequired,
	apperr.KindPrecondition: http.StatusPreconditionFailed,
	apperr.KindUnavailable:  http.StatusServiceUnavailable,
	apperr.KindForbidden:    http.StatusForbidden,
	apperr.KindBadRequest:   http.StatusBadRequest,
	apperr.KindRateLimited:  http.StatusTooManyRequests,
	apperr.KindUnauthorized: http.StatusUnauthorized,
	apperr.KindTooLarge:     http.StatusRequestEntityTooLarge,
	apperr.KindMediaType:    http.StatusUnsupportedMediaType,
	apperr.KindGateway:      http.StatusBadGateway,
}

// unavailableRetryAfter is the Retry-After of a 503: billingd reconnects within a second of the
// database's return, so a short wait is enough.
const unavailableRetryAfter = 1

// problemFor maps any error to its problem document. This is the one place errors become status codes.
func problemFor(err error) Problem {
	var illegal *statemachine.IllegalTransitionError
	if errors.As(err, &illegal) {
		return Problem{
			Status:  http.StatusConflict,
			Code:    "illegal_state_transition",
			Title:   "Illegal state transition",
			Detail:  illegal.Error(),
			Allowed: nonNil(illegal.Allowed),
			Extra:   map[string]any{"state": illegal.State},
		}
	}
	if e, ok := apperr.As(err); ok {
		status, known := statusByKind[e.Kind]
		if !known {
			status = http.StatusInternalServerError
		}
		p := Problem{Status: status, Code: e.Code, Title: http.StatusText(status), Detail: e.Message, Errors: e.Fields, Extra: e.Extra}
		if allowed, ok := e.Extra["allowed"].([]string); ok {
			p.Allowed = nonNil(allowed)
		}
		return p
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return Problem{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Title: "Request body too large",
			Detail: fmt.Sprintf("the body is limited to %d bytes", tooLarge.Limit)}
	}
	if dbx.IsUnavailable(err) {
		// The database is down or dropped the connection: nothing was wrong with the request, and the
		// idempotency layer keeps no answer for a request that committed nothing, so the same retry works.
		return Problem{Status: http.StatusServiceUnavailable, Code: "service_unavailable", Title: "Service unavailable",
			Detail: "the database is unavailable; retry later (with the same Idempotency-Key)"}
	}
	return Problem{Status: http.StatusInternalServerError, Code: "internal_error", Title: "Internal error",
		Detail: "the server failed to handle the request; it has been logged"}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// writeError answers err as problem+json, logging server-side failures (never sending their details).
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err)
	switch {
	case p.Status == http.StatusServiceUnavailable:
		loggerFrom(r).Warn("request failed: unavailable", "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(unavailableRetryAfter))
	case p.Status >= 500 && p.Status != http.StatusBadGateway:
		loggerFrom(r).Error("request failed", "err", err)
	}
	if p.Status == http.StatusTooManyRequests {
		if e, ok := apperr.As(err); ok {
			if s, ok := e.Extra["retry_after_seconds"].(int); ok {
				w.Header().Set("Retry-After", strconv.Itoa(s))
			}
		}
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p Problem) {
	if p.Type == "" {
		p.Type = "https://dunningworks.dev/problems/" + p.Code
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	if err := json.NewEncoder(w).Encode(p); err != nil {
		slog.Default().Warn("write problem", "err", err)
	}
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
