package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// A customer's backup card: charged once per invoice when the dunning policy allows (after a hard decline
// or the last soft retry on the default card). docs/dunning.md, "The backup card".
func (s *Server) mountBackupKeys(r chi.Router) {
	r.With(allow(RoleService)).Post("/v1/customers/{id}/billing-keys/{key_id}/backup", s.makeBackupBillingKey)
	r.With(allow(RoleService)).Delete("/v1/customers/{id}/billing-keys/{key_id}/backup", s.removeBackupBillingKey)
}

func (s *Server) makeBackupBillingKey(w http.ResponseWriter, r *http.Request) {
	var none struct{}
	if err := decodeOptional(r, &none); err != nil {
		writeError(w, r, err)
		return
	}
	k, err := s.Vault.MakeBackup(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "key_id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

func (s *Server) removeBackupBillingKey(w http.ResponseWriter, r *http.Request) {
	k, err := s.Vault.RemoveBackup(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "key_id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}
