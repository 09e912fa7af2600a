package console

import (
	"net/http"

	"github.com/dunningworks/billing/api"
)

// apiKeys lists the API keys for admins: names, roles and token prefixes, never a token or its hash.
func (c *Console) apiKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := api.ListAPIKeys(r.Context(), c.Pool)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "apikeys", view{Title: "API keys", Nav: "api-keys", Page: keys})
}
