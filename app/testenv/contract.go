package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/dunningworks/billing/api"
)

// Every answer a test receives through Env.Do is checked against api/openapi.json: a status the
// operation does not declare, a field its schema does not name, a value of the wrong shape, or a path the
// document does not hold fails the test that received it. The document is the contract clients code
// against; this keeps it true for everything the suite exercises.

var contract struct {
	once   sync.Once
	router routers.Router
	err    error
}

func contractRouter() (routers.Router, error) {
	contract.once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
		if err != nil {
			contract.err = fmt.Errorf("load api/openapi.json: %w", err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			contract.err = fmt.Errorf("api/openapi.json is not a valid OpenAPI 3 document: %w", err)
			return
		}
		doc.Servers = nil // the test server listens on a random port: match any host
		contract.router, contract.err = legacy.NewRouter(doc)
	})
	return contract.router, contract.err
}

// ContractViolation returns why the answer res to req is not one api/openapi.json describes, or "" when
// it is.
func ContractViolation(req *http.Request, res Response) string {
	router, err := contractRouter()
	if err != nil {
		return err.Error()
	}
	// FindRoute reads the request's URL and method only; a copy keeps the caller's body untouched.
	probe := req.Clone(context.Background())
	probe.Body = http.NoBody
	route, params, err := router.FindRoute(probe)
	if err != nil {
		if routingRefusal(res) || consolePage(req.URL.Path) {
			return "" // the service agrees that no such operation exists; the console's pages are HTML for people
		}
		return fmt.Sprintf("%s %s is not an operation of api/openapi.json (answered %d)", req.Method, req.URL.Path, res.Status)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true, // an undeclared status is a violation, not a "default" answer
		MultiError:            true,
	}
	in := &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route, Options: opts}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.Status, Header: res.Header, Options: opts}
	out.SetBodyBytes(res.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Sprintf("%s %s answered %d, which api/openapi.json (%s %s) does not describe: %v\nbody: %s",
			req.Method, req.URL.Path, res.Status, route.Method, route.Path, err, truncate(res.Body, 2000))
	}
	return ""
}

// routingRefusal: the router's own 404 (no such endpoint) or 405 (wrong method).
func routingRefusal(res Response) bool {
	if res.Status == http.StatusMethodNotAllowed {
		return true
	}
	if res.Status != http.StatusNotFound {
		return false
	}
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(res.Body, &p)
	return p.Code == "route_not_found" || bytes.HasPrefix(res.Body, []byte("404 page not found"))
}

// consolePage: API.md fixes only the console's entry points (which are documented); its other pages,
// forms and assets are HTML for people.
func consolePage(path string) bool {
	return path == "/console" || strings.HasPrefix(path, "/console/")
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
