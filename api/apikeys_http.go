package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/internal/page"
)

// mountAPIKeys registers the admin's API-key endpoints: the list (never a token) and revocation. Keys are
// created with `billingctl apikey create`, which prints the token once.
func (s *Server) mountAPIKeys(r chi.Router) {
	r.With(allow()).Get("/v1/api-keys", s.listAPIKeys)
	r.With(allow()).Post("/v1/api-keys/{id}/revoke", s.revokeAPIKey)
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) {
	p, err := page.Parse(r.URL.Query())
	if err != nil {
		writeError(w, r, err)
		return
	}
	list, err := ListAPIKeysPage(r.Context(), s.pool, p)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	var req reasonRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	key, err := RevokeAPIKey(r.Context(), s.pool, actorFrom(r), chi.URLParam(r, "id"), req.Reason, s.Clock.Now())
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, key)
}
