package stripe_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/devtools/stripemock"
	"github.com/dunningworks/billing/gateway/stripe"
)

func TestMain(m *testing.M) { stripemock.Main(m) }

// sentRequest is what the adapter put on the wire.
type sentRequest struct {
	Method string
	Path   string
	Query  url.Values
	Form   url.Values
	Header http.Header
}

// recorder is an http.RoundTripper that keeps every request the adapter sends.
type recorder struct {
	mu   sync.Mutex
	reqs []sentRequest
	next http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	form, _ := url.ParseQuery(string(body))
	r.mu.Lock()
	r.reqs = append(r.reqs, sentRequest{Method: req.Method, Path: req.URL.Path, Query: req.URL.Query(), Form: form, Header: req.Header.Clone()})
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *recorder) sent() []sentRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sentRequest(nil), r.reqs...)
}

type bundle struct {
	adapter *stripe.Adapter
	rec     *recorder
}

// setup builds an adapter against baseURL that records its requests.
func setup(t *testing.T, baseURL string, mutate ...func(*stripe.Config)) bundle {
	t.Helper()
	rec := &recorder{next: http.DefaultTransport}
	cfg := stripe.Config{
		APIURL:        baseURL,
		SecretKey:     "sk_test_123",
		WebhookSecret: "whsec_test",
		HTTPClient:    &http.Client{Transport: rec},
		Timeout:       5 * time.Second,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	a, err := stripe.New(cfg)
	require.NoError(t, err)
	return bundle{adapter: a, rec: rec}
}
