// Package page implements API.md's cursor pagination: `?limit=` (default 50, max 500) and an opaque
// `?cursor=` naming the last row seen by (created_at, id), so pages stay stable while rows are added.
package page

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dunningworks/billing/internal/apperr"
)

// Default and Max limits of API.md.
const (
	Default = 50
	Max     = 500
)

// Request is a parsed page request.
type Request struct {
	Limit int
	// After is the position of the last row of the previous page (zero for the first page).
	AfterTime time.Time
	AfterID   string
}

// HasCursor reports whether this is not the first page.
func (r Request) HasCursor() bool { return r.AfterID != "" }

// Parse reads limit and cursor from query values.
func Parse(q url.Values) (Request, error) {
	r := Request{Limit: Default}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > Max {
			return r, apperr.Invalid("limit", "must be an integer from 1 to %d", Max)
		}
		r.Limit = n
	}
	if c := q.Get("cursor"); c != "" {
		raw, err := base64.RawURLEncoding.DecodeString(c)
		ts, id, ok := strings.Cut(string(raw), "|")
		t, terr := time.Parse(time.RFC3339Nano, ts)
		if err != nil || !ok || terr != nil || id == "" {
			return r, apperr.Invalid("cursor", "is not a cursor this API returned")
		}
		r.AfterTime, r.AfterID = t, id
	}
	return r, nil
}

// Cursor encodes a row position.
func Cursor(createdAt time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(createdAt.UTC().Format(time.RFC3339Nano) + "|" + id))
}

// List is API.md's list envelope.
type List[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

// Build makes the envelope from up to limit+1 fetched rows: the extra row says there is a next page.
func Build[T any](rows []T, limit int, pos func(T) (time.Time, string)) List[T] {
	l := List[T]{Data: rows}
	if l.Data == nil {
		l.Data = []T{}
	}
	if len(rows) > limit {
		l.Data = rows[:limit]
		t, id := pos(rows[limit-1])
		c := Cursor(t, id)
		l.NextCursor = &c
	}
	return l
}
