package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3 description of the whole API (API.md's contract, in machine form).
// It is written by hand and kept honest by tests: every served route must be in it, everything in it
// must be served, and real responses must validate against its schemas (api/openapi_test.go).
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the embedded document.
func OpenAPI() []byte { return openAPIDocument }

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIDocument)
}
