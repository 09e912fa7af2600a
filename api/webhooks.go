package api

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/gateway"
)

// mountInboundWebhooks registers POST /webhooks/{gateway}: no bearer token (a gateway has none), so it is
// mounted outside the authenticated group. Anyone can post to it, so what a post may cost is bounded
// before anything is read: a bucket per sending address (429), then a 64 KiB body (413). What can be
// verified is verified by the gateway's adapter (Stripe's signature); an unsigned Toss event is only a
// hint that the job re-fetches before acting.
func (s *Server) mountInboundWebhooks(r chi.Router) {
	r.With(s.webhookRateLimit, limitBodyTo(maxWebhookBody)).Post("/webhooks/{gateway}", s.receiveWebhook)
}

type webhookReceipt struct {
	Received  bool   `json:"received"`
	Duplicate bool   `json:"duplicate"`
	EventID   string `json:"event_id"`
}

// receiveWebhook stores the event and enqueues its processing in one transaction, then answers at once:
// a gateway that waits retries, and a slow answer would turn every retry into more load.
func (s *Server) receiveWebhook(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "gateway")
	var gw gateway.Gateway
	if s.Gateways != nil {
		gw, _ = s.Gateways.Get(name)
	}
	if gw == nil {
		writeProblem(w, Problem{Status: http.StatusNotFound, Code: "gateway_not_found",
			Detail: "no enabled gateway named " + name + " receives webhooks here"})
		return
	}
	ev, err := gw.ParseWebhook(r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			writeError(w, r, err)
		case errors.Is(err, gateway.ErrInvalidSignature):
			loggerFrom(r).Warn("webhook refused: signature invalid", "gateway", name, "err", err)
			writeProblem(w, Problem{Status: http.StatusBadRequest, Code: "invalid_signature", Detail: "the webhook signature did not verify"})
		default:
			loggerFrom(r).Warn("webhook refused: unreadable", "gateway", name, "err", err)
			// The parser's error names Go types and offsets (encoding/json's wording): it goes to the log only.
			writeProblem(w, Problem{Status: http.StatusBadRequest, Code: "malformed_webhook",
				Detail: "the body is not a " + name + " webhook event (a JSON object of the gateway's event format)"})
		}
		return
	}
	stored, err := s.Billing.ReceiveWebhook(r.Context(), name, ev)
	if err != nil {
		// A 5xx makes the gateway retry: nothing was stored, so the retry is the event's only chance.
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, webhookReceipt{Received: true, Duplicate: !stored, EventID: ev.ID})
}
