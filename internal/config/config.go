// Package config reads billingd's settings from the environment (API.md's table, plus a few of our own),
// and reports every bad value at once with the variable's name, so a misconfigured replica refuses to start
// with a message an operator can act on.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dunningworks/billing/internal/keyring"
)

// Role selects what a billingd process runs.
type Role string

const (
	RoleAll    Role = "all"
	RoleAPI    Role = "api"
	RoleWorker Role = "worker"
)

// Mode is dev (public development keys, the test clock and private webhook targets allowed) or
// production. Production is what an unset BILLING_MODE means: development
// conveniences must be asked for by name, never reached by forgetting a variable.
type Mode string

const (
	ModeDev        Mode = "dev"
	ModeProduction Mode = "production"
)

// BootstrapKey is a token accepted in addition to the hashed keys in the database.
type BootstrapKey struct {
	Role  string
	Token Secret
}

// Secret is a string that never prints.
type Secret struct{ v string }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return s.v }

// String never shows the secret.
func (s Secret) String() string { return "[REDACTED]" }

// GoString never shows the secret.
func (s Secret) GoString() string { return "[REDACTED]" }

// MarshalText never shows the secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte("[REDACTED]"), nil }

// EncryptionKeys maps a key version to its 32-byte AES key. It never prints its keys.
type EncryptionKeys map[int][]byte

// String shows only the versions.
func (k EncryptionKeys) String() string {
	vs := make([]int, 0, len(k))
	for v := range k {
		vs = append(vs, v)
	}
	sort.Ints(vs)
	return fmt.Sprintf("EncryptionKeys(versions %v, [REDACTED])", vs)
}

// GoString never shows the keys, even with %#v.
func (k EncryptionKeys) GoString() string { return k.String() }

// Config is billingd's configuration.
type Config struct {
	// DatabaseURL is the service's connection: a role that reads and writes rows and cannot change the
	// schema (docs/security.md). MigrationDatabaseURL is the schema owner's, used only by migrations.
	DatabaseURL          string
	MigrationDatabaseURL string
	HTTPAddr             string
	Role                 Role
	Mode                 Mode
	BootstrapKeys        []BootstrapKey
	EncryptionKeys       EncryptionKeys // version -> 32-byte AES key; the highest version encrypts
	TestClock            bool
	// TestClockStart is the instant a new test clock starts at (zero: the wall clock at its first use).
	// Tests set it so that no test depends on the day it runs.
	TestClockStart   time.Time
	Gateways         []string
	TossAPIURL       string
	TossSecretKey    Secret
	StripeAPIURL     string
	StripeSecretKey  Secret
	StripeWebhookKey Secret
	// SimURL is pgsim's base URL; empty means billingd starts an embedded simulator on loopback.
	SimURL          string
	SimSecretKey    Secret
	DunningPolicy   string
	LogLevel        string
	Workers         int           // River workers per queue
	GatewayLimit    int           // concurrent requests per gateway (bulkhead)
	GatewayRate     float64       // requests per second per gateway
	GatewayTimeout  time.Duration // per request
	BreakerCooldown time.Duration // how long an open circuit stays open before a probe
	ShutdownTimeout time.Duration
	APIRateLimit    float64 // requests per second per token
	// WebhookRate is the inbound webhooks per second allowed per sending address (BILLING_WEBHOOK_RATE).
	WebhookRate float64
	// TrustedProxies are the proxies whose X-Forwarded-For names a webhook's sender
	// (BILLING_TRUSTED_PROXIES: addresses or CIDR prefixes); none means the peer address is the sender.
	TrustedProxies []netip.Prefix
	// WebhookRetention is how long a processed inbox row is kept (BILLING_WEBHOOK_RETENTION).
	WebhookRetention time.Duration
	// WebhookLookupWindow: after a webhook made us look an order up, further webhooks for the order wait
	// this long and share one lookup (BILLING_WEBHOOK_LOOKUP_WINDOW).
	WebhookLookupWindow time.Duration
	FetchCooldown       time.Duration
	JobTimeout          time.Duration // a job running longer is canceled
	JobRescueAfter      time.Duration // a job left running (its replica died) is retried after this
	// ReconcileTimeout is the daily reconciliation's own job timeout: it pages through a day of the
	// gateway's records, longer than a domain step. A run orphaned by a dead replica is retried after it.
	ReconcileTimeout time.Duration
	// InvoicePrefix is the merchant's document-number prefix: invoices are numbered <prefix>-000001,
	// credit notes <prefix>-CN-000001 (docs/numbering.md).
	InvoicePrefix string
	// PublicURL is the base of links in emails and of the customer page (BILLING_PUBLIC_URL, no trailing /).
	PublicURL string
	// PortalKeys sign customer-page links (BILLING_PORTAL_KEYS, version:base64 like the encryption keys);
	// empty means keys derived from EncryptionKeys. PortalLinkTTL is how long a link opens the page.
	PortalKeys    EncryptionKeys
	PortalLinkTTL time.Duration
	// MerchantName heads receipts and the customer page (BILLING_MERCHANT_NAME).
	MerchantName string
	// TossClientKey is the client key the customer page hands Toss's SDK for card registration.
	TossClientKey string
	// SMTP is the mail server customer emails go through (BILLING_SMTP_URL; zero Host: none).
	SMTP SMTP
	// MailFrom is the sender of customer emails (BILLING_MAIL_FROM); empty turns customer emails off.
	MailFrom string
	// MailTemplates is a directory of templates overriding the built-in ones (BILLING_MAIL_TEMPLATES).
	MailTemplates string
	// MailKinds chooses which kinds of email are sent (BILLING_MAIL_KINDS, raw: package mail parses it).
	MailKinds string
}

// SMTP is a parsed BILLING_SMTP_URL: smtp://user:pass@host:port (STARTTLS when the server offers it) or
// smtps://... (TLS from the first byte). It never prints the password.
type SMTP struct {
	Host     string
	Port     int
	Username string
	Password Secret
	// ImplicitTLS is smtps://.
	ImplicitTLS bool
}

// String shows the server without the password.
func (s SMTP) String() string {
	if s.Host == "" {
		return "none"
	}
	scheme := "smtp"
	if s.ImplicitTLS {
		scheme = "smtps"
	}
	user := ""
	if s.Username != "" {
		user = s.Username + ":[REDACTED]@"
	}
	return fmt.Sprintf("%s://%s%s", scheme, user, net.JoinHostPort(s.Host, strconv.Itoa(s.Port)))
}

// GoString never shows the password.
func (s SMTP) GoString() string { return s.String() }

// parseSMTP reads BILLING_SMTP_URL.
func parseSMTP(raw string) (SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return SMTP{}, errors.New("must be smtp://user:pass@host:port (or smtps://)")
	}
	out := SMTP{Host: u.Hostname(), ImplicitTLS: u.Scheme == "smtps", Port: 587}
	if out.ImplicitTLS {
		out.Port = 465
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return SMTP{}, errors.New("the port must be 1-65535")
		}
		out.Port = n
	}
	if u.User != nil {
		out.Username = u.User.Username()
		pw, _ := u.User.Password()
		out.Password = Secret{pw}
	}
	return out, nil
}

// Error lists every invalid variable.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// Load reads the environment through getenv (os.Getenv when nil).
func Load(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var problems []string
	bad := func(name, format string, args ...any) {
		problems = append(problems, name+": "+fmt.Sprintf(format, args...))
	}
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}

	c := Config{
		DatabaseURL:      get("DATABASE_URL", ""),
		HTTPAddr:         get("BILLING_HTTP_ADDR", "127.0.0.1:8080"),
		Role:             Role(get("BILLING_ROLE", "all")),
		Mode:             Mode(get("BILLING_MODE", string(ModeProduction))),
		TossAPIURL:       get("TOSS_API_URL", "https://api.tosspayments.com"),
		TossSecretKey:    Secret{get("TOSS_SECRET_KEY", "")},
		StripeAPIURL:     get("STRIPE_API_URL", "https://api.stripe.com"),
		StripeSecretKey:  Secret{get("STRIPE_SECRET_KEY", "")},
		StripeWebhookKey: Secret{get("STRIPE_WEBHOOK_SECRET", "")},
		SimURL:           get("BILLING_SIM_URL", ""),
		SimSecretKey:     Secret{get("BILLING_SIM_SECRET", "test_sk_sim")},
		DunningPolicy:    get("BILLING_DUNNING_POLICY", ""),
		LogLevel:         get("BILLING_LOG_LEVEL", "info"),
	}

	c.MigrationDatabaseURL = get("BILLING_MIGRATION_DATABASE_URL", "")
	c.InvoicePrefix = get("BILLING_INVOICE_PREFIX", "INV")
	if !invoicePrefixPattern.MatchString(c.InvoicePrefix) {
		bad("BILLING_INVOICE_PREFIX", "must be 1-16 of A-Z and 0-9, starting with a letter, got %q", c.InvoicePrefix)
	}
	if c.DatabaseURL == "" {
		bad("DATABASE_URL", "required (make run sets it to a local cluster)")
	}
	if v := get("BILLING_SMTP_URL", ""); v != "" {
		smtp, err := parseSMTP(v)
		if err != nil {
			bad("BILLING_SMTP_URL", "%v", err)
		}
		c.SMTP = smtp
	}
	c.MailFrom = get("BILLING_MAIL_FROM", "")
	if c.MailFrom != "" {
		if _, err := mail.ParseAddress(c.MailFrom); err != nil {
			bad("BILLING_MAIL_FROM", "must be an address like billing@example.com or \"Shop <billing@example.com>\", got %q", c.MailFrom)
		}
		if c.SMTP.Host == "" {
			bad("BILLING_SMTP_URL", "required when BILLING_MAIL_FROM is set (customer emails are on)")
		}
	}
	c.MailTemplates = get("BILLING_MAIL_TEMPLATES", "")
	if c.MailTemplates != "" {
		if st, err := os.Stat(c.MailTemplates); err != nil || !st.IsDir() {
			bad("BILLING_MAIL_TEMPLATES", "must be a directory, got %q", c.MailTemplates)
		}
	}
	c.MailKinds = get("BILLING_MAIL_KINDS", "")
	checkDatabaseURLs(c.DatabaseURL, c.MigrationDatabaseURL, bad)
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("BILLING_HTTP_ADDR", "must be host:port, got %q", c.HTTPAddr)
	}
	switch c.Role {
	case RoleAll, RoleAPI, RoleWorker:
	default:
		bad("BILLING_ROLE", "must be all, api or worker, got %q", c.Role)
	}
	switch c.Mode {
	case ModeDev, ModeProduction:
	default:
		bad("BILLING_MODE", "must be dev or production, got %q", c.Mode)
	}

	for _, part := range splitList(getenv("BILLING_BOOTSTRAP_KEYS")) {
		role, token, ok := strings.Cut(part, ":")
		switch {
		case !ok || token == "":
			bad("BILLING_BOOTSTRAP_KEYS", "entries are role:token")
		case role != "service" && role != "support" && role != "admin":
			bad("BILLING_BOOTSTRAP_KEYS", "role must be service, support or admin, got %q", role)
		case len(token) < 16:
			bad("BILLING_BOOTSTRAP_KEYS", "a %s token is shorter than 16 characters", role)
		default:
			c.BootstrapKeys = append(c.BootstrapKeys, BootstrapKey{Role: role, Token: Secret{token}})
		}
	}

	c.EncryptionKeys = keysVar(getenv, "BILLING_ENCRYPTION_KEYS", bad)
	if c.Mode == ModeProduction && len(c.EncryptionKeys) == 0 {
		bad("BILLING_ENCRYPTION_KEYS", "required in production mode (BILLING_MODE unset means production; BILLING_MODE=dev is for development)")
	}
	// Customer-page links are signed under keys of their own when given, else under keys derived from
	// the encryption keys (never the same bytes: keyring.Ring.MAC derives one key per purpose).
	c.PortalKeys = keysVar(getenv, "BILLING_PORTAL_KEYS", bad)
	if c.Mode == ModeProduction {
		for name, keys := range map[string]EncryptionKeys{"BILLING_ENCRYPTION_KEYS": c.EncryptionKeys, "BILLING_PORTAL_KEYS": c.PortalKeys} {
			for v, key := range keys {
				if keyring.IsPublic(key) {
					bad(name, "key version %d is a public development or test key, refused in production mode", v)
				}
			}
		}
	}
	c.PortalLinkTTL = durationVar(getenv, "BILLING_PORTAL_LINK_TTL", 30*24*time.Hour, bad)
	c.MerchantName = get("BILLING_MERCHANT_NAME", "DunningWorks")
	c.PublicURL = strings.TrimRight(get("BILLING_PUBLIC_URL", "http://127.0.0.1:8080"), "/")
	if p, err := url.Parse(c.PublicURL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		bad("BILLING_PUBLIC_URL", "must be an http(s) URL, got %q", c.PublicURL)
	}
	c.TossClientKey = get("TOSS_CLIENT_KEY", "")

	switch tc := getenv("BILLING_TEST_CLOCK"); tc {
	case "", "0", "false":
	case "1", "true":
		c.TestClock = true
		if c.Mode == ModeProduction {
			bad("BILLING_TEST_CLOCK", "the test clock is refused in production mode (BILLING_MODE unset means production; BILLING_MODE=dev is for development)")
		}
	default:
		bad("BILLING_TEST_CLOCK", "must be 1 or empty, got %q", tc)
	}
	if v := get("BILLING_TEST_CLOCK_START", ""); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			bad("BILLING_TEST_CLOCK_START", "must be an RFC 3339 time, got %q", v)
		}
		c.TestClockStart = t.UTC()
	}

	c.Gateways = splitList(get("BILLING_GATEWAYS", "sim"))
	seen := map[string]bool{}
	for _, g := range c.Gateways {
		switch g {
		case "sim", "toss", "stripe":
		default:
			bad("BILLING_GATEWAYS", "unknown gateway %q (known: sim, toss, stripe)", g)
		}
		if seen[g] {
			bad("BILLING_GATEWAYS", "gateway %q listed twice", g)
		}
		seen[g] = true
	}
	if len(c.Gateways) == 0 {
		bad("BILLING_GATEWAYS", "at least one gateway is required")
	}

	if seen["toss"] && c.TossSecretKey.v == "" {
		bad("TOSS_SECRET_KEY", "required when the toss gateway is enabled")
	}
	if seen["stripe"] && c.StripeSecretKey.v == "" {
		bad("STRIPE_SECRET_KEY", "required when the stripe gateway is enabled")
	}
	for name, u := range map[string]string{"TOSS_API_URL": c.TossAPIURL, "STRIPE_API_URL": c.StripeAPIURL, "BILLING_SIM_URL": c.SimURL} {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad(name, "must be an http(s) URL, got %q", u)
		}
	}
	if c.DunningPolicy != "" {
		if _, err := os.Stat(c.DunningPolicy); err != nil {
			bad("BILLING_DUNNING_POLICY", "cannot read %s: %v", c.DunningPolicy, err)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("BILLING_LOG_LEVEL", "must be debug, info, warn or error")
	}

	// A renewal holds its River worker through the gateway call, so workers bound in-flight charges:
	// 1,000 renewals/s against a gateway answering in 250 ms needs about 250 of them, and the bulkhead as
	// many (cmd/bench; docs/performance.md). Workers wait on the gateway without holding a connection.
	c.Workers = intVar(getenv, "BILLING_WORKERS", 300, 1, 10000, bad)
	c.GatewayLimit = intVar(getenv, "BILLING_GATEWAY_CONCURRENCY", 300, 1, 10000, bad)
	c.GatewayRate = floatVar(getenv, "BILLING_GATEWAY_RATE", 5000, bad)
	c.APIRateLimit = floatVar(getenv, "BILLING_API_RATE", 1000, bad)
	// A gateway sends its webhooks from a few addresses, about one per charge: 100/s per address covers a
	// billing day of 100 charges a second; a bigger merchant raises it (docs/webhooks.md).
	c.WebhookRate = floatVar(getenv, "BILLING_WEBHOOK_RATE", 100, bad)
	c.TrustedProxies = prefixesVar(getenv, "BILLING_TRUSTED_PROXIES", bad)
	c.WebhookRetention = durationVar(getenv, "BILLING_WEBHOOK_RETENTION", 30*24*time.Hour, bad)
	c.WebhookLookupWindow = durationVar(getenv, "BILLING_WEBHOOK_LOOKUP_WINDOW", 10*time.Second, bad)
	if c.WebhookRetention < 24*time.Hour {
		// The newest rows say whether a gateway's webhooks went silent, and support reads recent ones.
		bad("BILLING_WEBHOOK_RETENTION", "must be at least 24h, got %s", c.WebhookRetention)
	}
	c.GatewayTimeout = durationVar(getenv, "BILLING_GATEWAY_TIMEOUT", 10*time.Second, bad)
	c.BreakerCooldown = durationVar(getenv, "BILLING_BREAKER_COOLDOWN", 30*time.Second, bad)
	c.ShutdownTimeout = durationVar(getenv, "BILLING_SHUTDOWN_TIMEOUT", 20*time.Second, bad)
	c.FetchCooldown = durationVar(getenv, "BILLING_FETCH_COOLDOWN", 5*time.Millisecond, bad)
	c.JobTimeout = durationVar(getenv, "BILLING_JOB_TIMEOUT", 30*time.Second, bad)
	c.JobRescueAfter = durationVar(getenv, "BILLING_JOB_RESCUE_AFTER", 45*time.Second, bad)
	c.ReconcileTimeout = durationVar(getenv, "BILLING_RECONCILE_TIMEOUT", 30*time.Minute, bad)
	if c.JobRescueAfter <= c.JobTimeout {
		bad("BILLING_JOB_RESCUE_AFTER", "must be longer than BILLING_JOB_TIMEOUT (%s), or healthy jobs would be rescued while running", c.JobTimeout)
	}

	if len(problems) > 0 {
		sort.Strings(problems)
		return Config{}, &Error{Problems: problems}
	}
	return c, nil
}

// DatabaseURLs are the two connections of `billingd migrate`: Migration, the schema owner's (which runs
// the migrations), and Service, the role the service runs as (which they grant). Migration defaults to
// DATABASE_URL, the single-role setup; Service is empty when DATABASE_URL is not set (no grants then).
type DatabaseURLs struct {
	Migration string
	Service   string
}

// MigrationURLs reads the two database URLs migrations need (getenv: os.Getenv when nil). Unlike Load it
// asks for nothing else, so migrating never needs the service's keys or gateways.
func MigrationURLs(getenv func(string) string) (DatabaseURLs, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	u := DatabaseURLs{Migration: strings.TrimSpace(getenv("BILLING_MIGRATION_DATABASE_URL")), Service: strings.TrimSpace(getenv("DATABASE_URL"))}
	var problems []string
	bad := func(name, format string, args ...any) {
		problems = append(problems, name+": "+fmt.Sprintf(format, args...))
	}
	if u.Migration == "" {
		u.Migration = u.Service
	}
	if u.Migration == "" {
		bad("BILLING_MIGRATION_DATABASE_URL", "required, or DATABASE_URL (the schema owner's URL runs the migrations)")
	}
	checkDatabaseURLs(u.Service, u.Migration, bad)
	if len(problems) > 0 {
		return DatabaseURLs{}, &Error{Problems: problems}
	}
	return u, nil
}

func checkDatabaseURLs(service, migration string, bad func(string, string, ...any)) {
	for name, v := range map[string]string{"DATABASE_URL": service, "BILLING_MIGRATION_DATABASE_URL": migration} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad(name, "must be a postgres:// URL")
		}
	}
}

// ErrInvalid matches any *Error.
var ErrInvalid = errors.New("invalid configuration")

// Is makes errors.Is(err, ErrInvalid) work.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// invoicePrefixPattern leaves room for "-CN" within the counter's 20 characters.
var invoicePrefixPattern = regexp.MustCompile(`^[A-Z][A-Z0-9]{0,15}$`)

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// prefixesVar reads a list of addresses and CIDR prefixes (an address is its own /32 or /128).
func prefixesVar(getenv func(string) string, name string, bad func(string, string, ...any)) []netip.Prefix {
	var out []netip.Prefix
	for _, item := range splitList(getenv(name)) {
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			bad(name, "must be a list of IP addresses or CIDR prefixes, got %q", item)
			continue
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}

func intVar(getenv func(string) string, name string, def, lo, hi int, bad func(string, string, ...any)) int {
	s := strings.TrimSpace(getenv(name))
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		bad(name, "must be an integer in [%d, %d], got %q", lo, hi, s)
		return def
	}
	return v
}

func floatVar(getenv func(string) string, name string, def float64, bad func(string, string, ...any)) float64 {
	s := strings.TrimSpace(getenv(name))
	if s == "" {
		return def
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		bad(name, "must be a positive number, got %q", s)
		return def
	}
	return v
}

func durationVar(getenv func(string) string, name string, def time.Duration, bad func(string, string, ...any)) time.Duration {
	s := strings.TrimSpace(getenv(name))
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		bad(name, "must be a positive duration like 10s, got %q", s)
		return def
	}
	return v
}

// keysVar reads version:base64-32-bytes,... (BILLING_ENCRYPTION_KEYS and BILLING_PORTAL_KEYS).
func keysVar(getenv func(string) string, name string, bad func(string, string, ...any)) EncryptionKeys {
	keys := EncryptionKeys{}
	for _, part := range splitList(getenv(name)) {
		vs, b64, ok := strings.Cut(part, ":")
		v, err := strconv.Atoi(vs)
		if !ok || err != nil || v < 1 {
			bad(name, "entries are version:base64 with a positive integer version")
			continue
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != 32 {
			bad(name, "key version %d must be 32 bytes, base64-encoded", v)
			continue
		}
		if _, dup := keys[v]; dup {
			bad(name, "key version %d given twice", v)
		}
		keys[v] = key
	}
	return keys
}
