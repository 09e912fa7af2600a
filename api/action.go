package api

import (
	"net/http"

	"github.com/dunningworks/billing/billing"
)

// versioned is the frame of a handler that changes one versioned resource (support's actions, the
// subscription lifecycle, plan changes): read the body into Req with read (decode, or decodeOptional where
// the body may be empty), check it if Req has a check method, read If-Match, make the one domain call with
// the expected version, and answer 200 with the result and its ETag. The first step that refuses answers
// its problem and nothing after it runs; the domain call compares the version under its row lock.
func versioned[Req, Resp any](w http.ResponseWriter, r *http.Request, read func(*http.Request, any) error,
	version func(Resp) int, call func(req Req, expect int) (Resp, error)) {
	var req Req
	if err := read(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	if c, ok := any(&req).(interface{ check() error }); ok {
		if err := c.check(); err != nil {
			writeError(w, r, err)
			return
		}
	}
	expect, err := ifMatchVersion(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out, err := call(req, expect)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(version(out)))
	writeJSON(w, http.StatusOK, out)
}

// The ETag versions of what versioned handlers answer with.
func invoiceVersion(inv billing.Invoice) int           { return inv.Version }
func subscriptionVersion(sub billing.Subscription) int { return sub.Version }
