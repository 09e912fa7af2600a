package toss

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dunningworks/billing/gateway"
)

// DefaultBaseURL is Toss Payments' API host.
const DefaultBaseURL = "https://api.tosspayments.com"

// DefaultTimeout bounds one request when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// maxBody caps what the adapter reads from any answer; Toss answers are a few kilobytes, and a transaction
// page of 10,000 lines stays far below this.
const maxBody = 32 << 20

// Config configures an Adapter.
type Config struct {
	// BaseURL is the API root, e.g. https://api.tosspayments.com or pgsim's address. Default DefaultBaseURL.
	BaseURL string
	// SecretKey is the merchant's secret key; sent as Basic auth "secretKey:".
	SecretKey string
	// Name is the gateway name the adapter reports: "toss" (default) or "sim" when pointed at pgsim.
	Name gateway.Name
	// HTTPClient is used for every request. Default: a client with a pooled transport sized for bursts of
	// concurrent charges. Its own Timeout, if any, also applies.
	HTTPClient *http.Client
	// Timeout bounds each request (connect, send, answer). Default DefaultTimeout.
	Timeout time.Duration
	// Currencies the gateway charges in. Default KRW only, which is all Toss billing approves. pgsim takes
	// a few more (pgsim.Currencies) through an extension field, `currency`, that Toss does not define: the
	// adapter sends that field only for a currency other than KRW, so never to Toss itself.
	Currencies []string
}

// Adapter implements gateway.Gateway for the Toss Payments v1 wire format. It is safe for concurrent use.
type Adapter struct {
	base    string
	auth    string
	name    gateway.Name
	client  *http.Client
	timeout time.Duration
	// pageSize is the transaction list page; a field so tests can exercise paging with a few lines.
	pageSize   int
	currencies map[string]bool
}

var _ gateway.Gateway = (*Adapter)(nil)

// New returns an adapter. Missing fields take their documented defaults.
func New(cfg Config) *Adapter {
	a := &Adapter{
		base:     strings.TrimRight(cfg.BaseURL, "/"),
		auth:     "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.SecretKey+":")),
		name:     cfg.Name,
		client:   cfg.HTTPClient,
		timeout:  cfg.Timeout,
		pageSize: maxPageSize,
	}
	if a.base == "" {
		a.base = DefaultBaseURL
	}
	a.currencies = map[string]bool{"KRW": true}
	if len(cfg.Currencies) > 0 {
		a.currencies = map[string]bool{}
		for _, c := range cfg.Currencies {
			a.currencies[c] = true
		}
	}
	if a.name == "" {
		a.name = "toss"
	}
	if a.timeout <= 0 {
		a.timeout = DefaultTimeout
	}
	if a.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 256
		t.MaxIdleConnsPerHost = 128
		a.client = &http.Client{Transport: t}
	}
	return a
}

// Name reports the configured gateway name.
func (a *Adapter) Name() gateway.Name { return a.name }

// SupportsCurrency reports whether the configured gateway charges in currency (Toss: KRW only).
func (a *Adapter) SupportsCurrency(currency string) bool { return a.currencies[currency] }

// merchantError builds the error for a refusal of our side of a request.
func (a *Adapter) merchantError(status int, e errorBody) *gateway.MerchantError {
	return &gateway.MerchantError{Gateway: a.name, Status: status, Code: e.Code, Message: e.Message}
}

// APIError is a non-success answer from Toss on calls whose outcome is not a charge Outcome (cancel,
// transactions, issue for non-decline answers).
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("toss: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// answer is an HTTP response read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// sendError is a failed exchange. sent is false only when no connection was ever obtained, so not one
// byte of the request can have reached Toss; everything else must be treated as possibly processed.
type sendError struct {
	sent bool
	err  error
}

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// do performs one request with the adapter's timeout. idemKey, when non-empty, is sent as Idempotency-Key.
// secret, when non-empty, is a path segment (the billing key) scrubbed from errors: net/http puts the URL
// in its errors, and those end up in Outcome.Reason, which is stored and logged.
func (a *Adapter) do(ctx context.Context, method, path, idemKey, secret string, in any) (answer, error) {
	if err := ctx.Err(); err != nil {
		return answer{}, &sendError{sent: false, err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()

	var body io.Reader
	var raw []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return answer{}, &sendError{sent: false, err: fmt.Errorf("encode request: %w", err)}
		}
		raw = b
		body = bytes.NewReader(b)
	}
	var gotConn atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return answer{}, &sendError{sent: false, err: err}
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", a.auth)
	req.Header.Set("Accept", "application/json")
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	res, err := a.client.Do(req)
	if err != nil {
		var ue *url.Error
		if secret != "" && errors.As(err, &ue) {
			ue.URL = strings.ReplaceAll(ue.URL, url.PathEscape(secret), "[REDACTED]")
		}
		return answer{}, &sendError{sent: gotConn.Load(), err: err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return answer{}, &sendError{sent: true, err: fmt.Errorf("read answer (HTTP %d): %w", res.StatusCode, err)}
	}
	return answer{status: res.StatusCode, header: res.Header, body: b}, nil
}

// tryLater builds the error for a 429: Toss throttled the request before processing it.
func (a *Adapter) tryLater(ans answer) error {
	return &gateway.TryLaterError{
		Gateway:    a.name,
		RetryAfter: retryAfter(ans.header.Get("Retry-After"), time.Now()),
		Cause:      "rate limited (HTTP 429)",
	}
}

// notSent converts an exchange that never reached Toss into the error the port expects.
func (a *Adapter) notSent(err error) error {
	var se *sendError
	if errors.As(err, &se) && errors.Is(se.err, context.Canceled) {
		return fmt.Errorf("%s: request not sent: %w", a.name, se.err)
	}
	return &gateway.TryLaterError{Gateway: a.name, Cause: "request not sent: " + err.Error()}
}

func wasSent(err error) bool {
	var se *sendError
	return !errors.As(err, &se) || se.sent
}

// retryAfter reads a Retry-After header (seconds or HTTP date); zero when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func parseError(b []byte) (errorBody, bool) {
	var e errorBody
	if err := json.Unmarshal(b, &e); err != nil || e.Code == "" {
		return errorBody{}, false
	}
	return e, true
}

// derivedKey makes a deterministic idempotency key for calls whose callers pass none, so a resend of the
// same logical request is the same request to Toss. Toss accepts keys up to 300 characters.
func derivedKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func unknown(format string, args ...any) gateway.Outcome {
	return gateway.Outcome{Kind: gateway.Unknown, Reason: fmt.Sprintf(format, args...)}
}

// snippet shortens a body for a reason string.
func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
