package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/internal/page"
)

type issueBillingKeyRequest struct {
	Gateway     string `json:"gateway"`
	AuthKey     string `json:"auth_key"`
	CustomerKey string `json:"customer_key"`
}

func (s *Server) mountBillingKeys(r chi.Router) {
	r.With(allow(RoleService)).Post("/v1/customers/{id}/billing-keys", s.issueBillingKey)
	r.With(allow(RoleService, RoleSupport)).Get("/v1/customers/{id}/billing-keys", s.listBillingKeys)
	r.With(allow(RoleService)).Post("/v1/customers/{id}/billing-keys/{key_id}/default", s.makeDefaultBillingKey)
	r.With(allow(RoleService)).Delete("/v1/customers/{id}/billing-keys/{key_id}", s.revokeBillingKey)
}

func (s *Server) issueBillingKey(w http.ResponseWriter, r *http.Request) {
	var req issueBillingKeyRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	k, err := s.Vault.Issue(r.Context(), chi.URLParam(r, "id"), req.Gateway, req.AuthKey, req.CustomerKey, idempotencyOf(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, k)
}

func (s *Server) listBillingKeys(w http.ResponseWriter, r *http.Request) {
	p, err := page.Parse(r.URL.Query())
	if err != nil {
		writeError(w, r, err)
		return
	}
	l, err := s.Vault.List(r.Context(), chi.URLParam(r, "id"), p)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) makeDefaultBillingKey(w http.ResponseWriter, r *http.Request) {
	var none struct{}
	if err := decodeOptional(r, &none); err != nil {
		writeError(w, r, err)
		return
	}
	k, err := s.Vault.MakeDefault(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "key_id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

func (s *Server) revokeBillingKey(w http.ResponseWriter, r *http.Request) {
	k, err := s.Vault.Revoke(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "key_id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}
