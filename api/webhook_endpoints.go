package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/notify"
)

type createWebhookEndpointRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

// mountWebhookEndpoints registers API.md's outgoing webhook endpoints (admin only): the signing secret is
// in the creation answer and nowhere else.
func (s *Server) mountWebhookEndpoints(r chi.Router) {
	if s.Notify == nil {
		return
	}
	r.With(allow()).Post("/v1/webhook-endpoints", s.createWebhookEndpoint)
	r.With(allow()).Get("/v1/webhook-endpoints", s.listWebhookEndpoints)
	r.With(allow()).Get("/v1/webhook-endpoints/{id}", s.getWebhookEndpoint)
	r.With(allow()).Delete("/v1/webhook-endpoints/{id}", s.deleteWebhookEndpoint)
	r.With(allow()).Get("/v1/webhook-endpoints/{id}/deliveries", s.listWebhookDeliveries)
	r.With(allow()).Post("/v1/webhook-endpoints/{id}/deliveries/{delivery_id}/resend", s.resendWebhookDelivery)
}

func (s *Server) createWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	var req createWebhookEndpointRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	ep, err := s.Notify.CreateEndpoint(r.Context(), notify.NewEndpoint{URL: req.URL, Events: req.Events})
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store") // the secret must not linger in a cache
	writeJSON(w, http.StatusCreated, ep)
}

func (s *Server) listWebhookEndpoints(w http.ResponseWriter, r *http.Request) {
	p, err := page.Parse(r.URL.Query())
	if err != nil {
		writeError(w, r, err)
		return
	}
	l, err := s.Notify.ListEndpoints(r.Context(), p)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) getWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	ep, err := s.Notify.GetEndpoint(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ep)
}

func (s *Server) deleteWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	ep, err := s.Notify.DeleteEndpoint(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ep)
}

func (s *Server) listWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	p, err := page.Parse(r.URL.Query())
	if err != nil {
		writeError(w, r, err)
		return
	}
	l, err := s.Notify.ListDeliveries(r.Context(), chi.URLParam(r, "id"), p)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// resendWebhookDelivery gives a failed delivery one more attempt now (after the receiver was fixed).
func (s *Server) resendWebhookDelivery(w http.ResponseWriter, r *http.Request) {
	if err := decodeOptional(r, &struct{}{}); err != nil {
		writeError(w, r, err)
		return
	}
	d, err := s.Notify.Resend(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "delivery_id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, d)
}
