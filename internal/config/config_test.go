package config_test

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/internal/config"
	"github.com/dunningworks/billing/internal/keyring"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"DATABASE_URL": "postgres://localhost/billing", "BILLING_MODE": "dev"}))
	require.NoError(t, err)
	require.Equal(t, config.ModeDev, c.Mode)
	require.Equal(t, "127.0.0.1:8080", c.HTTPAddr)
	require.Equal(t, config.RoleAll, c.Role)
	require.Equal(t, []string{"sim"}, c.Gateways)
	require.False(t, c.TestClock)
	require.Equal(t, "https://api.tosspayments.com", c.TossAPIURL)
}

func TestEveryBadValueIsNamed(t *testing.T) {
	t.Parallel()
	_, err := config.Load(env(map[string]string{
		"DATABASE_URL":            "mysql://x",
		"BILLING_HTTP_ADDR":       "nope",
		"BILLING_ROLE":            "boss",
		"BILLING_BOOTSTRAP_KEYS":  "root:abcdefghijklmnopq,admin:short",
		"BILLING_ENCRYPTION_KEYS": "1:bm90MzJieXRlcw==",
		"BILLING_TEST_CLOCK":      "yes",
		"BILLING_GATEWAYS":        "sim,paypal",
		"BILLING_WORKERS":         "0",
	}))
	require.ErrorIs(t, err, config.ErrInvalid)
	for _, name := range []string{"DATABASE_URL", "BILLING_HTTP_ADDR", "BILLING_ROLE", "BILLING_BOOTSTRAP_KEYS",
		"BILLING_ENCRYPTION_KEYS", "BILLING_TEST_CLOCK", "BILLING_GATEWAYS", "BILLING_WORKERS"} {
		require.Contains(t, err.Error(), name+":")
	}
}

// Development conveniences are never reached by leaving a variable out: an unset BILLING_MODE is
// production, which refuses to start on the development defaults (no encryption keys, the simulator).
func TestUnsetModeIsProductionAndRefusesDevelopmentDefaults(t *testing.T) {
	t.Parallel()
	_, err := config.Load(env(map[string]string{"DATABASE_URL": "postgres://localhost/billing"}))
	require.ErrorIs(t, err, config.ErrInvalid)
	require.ErrorContains(t, err, "BILLING_ENCRYPTION_KEYS: required in production mode")
	require.ErrorContains(t, err, "BILLING_MODE=dev")

	// The keys published in this repository are no keys at all.
	_, err = config.Load(env(map[string]string{"DATABASE_URL": "postgres://localhost/billing", "BILLING_GATEWAYS": "toss",
		"TOSS_SECRET_KEY": "live_sk_x", "BILLING_ENCRYPTION_KEYS": "1:" + keyring.TestKey}))
	require.ErrorContains(t, err, "BILLING_ENCRYPTION_KEYS: key version 1 is a public development or test key")

	real := base64.StdEncoding.EncodeToString([]byte("a real key, 32 bytes long, random"[:32]))
	c, err := config.Load(env(map[string]string{"DATABASE_URL": "postgres://localhost/billing", "BILLING_GATEWAYS": "toss",
		"TOSS_SECRET_KEY": "live_sk_x", "BILLING_ENCRYPTION_KEYS": "1:" + real}))
	require.NoError(t, err)
	require.Equal(t, config.ModeProduction, c.Mode)
	require.False(t, c.TestClock)

	// Dev mode is chosen by name, and only then are the conveniences allowed.
	c, err = config.Load(env(map[string]string{"DATABASE_URL": "postgres://localhost/billing", "BILLING_MODE": "dev", "BILLING_TEST_CLOCK": "1"}))
	require.NoError(t, err)
	require.Equal(t, config.ModeDev, c.Mode)
	require.Empty(t, c.EncryptionKeys)
	require.Equal(t, []string{"sim"}, c.Gateways)
}

func TestProductionRefusesTestClockAndMissingKeys(t *testing.T) {
	t.Parallel()
	_, err := config.Load(env(map[string]string{
		"DATABASE_URL": "postgres://localhost/billing", "BILLING_MODE": "production", "BILLING_TEST_CLOCK": "1",
	}))
	require.ErrorContains(t, err, "BILLING_TEST_CLOCK: the test clock is refused in production mode")
	require.ErrorContains(t, err, "BILLING_ENCRYPTION_KEYS: required in production mode")
}

func TestSecretsDoNotPrint(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{
		"DATABASE_URL":           "postgres://localhost/billing",
		"BILLING_MODE":           "dev",
		"BILLING_BOOTSTRAP_KEYS": "admin:supersecrettoken123",
		"BILLING_GATEWAYS":       "toss",
		"TOSS_SECRET_KEY":        "test_sk_topsecret",
	}))
	require.NoError(t, err)
	out := fmt.Sprintf("%v %+v %#v %s", c, c, c, c.TossSecretKey)
	require.NotContains(t, out, "supersecrettoken123")
	require.NotContains(t, out, "test_sk_topsecret")
	require.Equal(t, "supersecrettoken123", c.BootstrapKeys[0].Token.Reveal())
}

func TestEncryptionKeys(t *testing.T) {
	t.Parallel()
	k := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	c, err := config.Load(env(map[string]string{"DATABASE_URL": "postgres://x/y", "BILLING_MODE": "dev", "BILLING_ENCRYPTION_KEYS": "1:" + k + ",2:" + k}))
	require.NoError(t, err)
	require.Len(t, c.EncryptionKeys, 2)
	require.Len(t, c.EncryptionKeys[2], 32)
	out := fmt.Sprintf("%v %+v %#v", c, c, c)
	require.NotContains(t, out, "48, 49, 50") // the key's bytes
	require.NotContains(t, out, "0123456789abcdef")
	require.Contains(t, out, "[REDACTED]")
}

func TestWebhookInboxSettings(t *testing.T) {
	t.Parallel()
	base := map[string]string{"DATABASE_URL": "postgres://localhost/billing", "BILLING_MODE": "dev"}
	c, err := config.Load(env(base))
	require.NoError(t, err)
	require.Equal(t, 100.0, c.WebhookRate)
	require.Empty(t, c.TrustedProxies, "X-Forwarded-For is believed from nobody unless configured")
	require.Equal(t, 30*24*time.Hour, c.WebhookRetention)
	require.Equal(t, 10*time.Second, c.WebhookLookupWindow)

	base["BILLING_WEBHOOK_RATE"] = "2.5"
	base["BILLING_TRUSTED_PROXIES"] = "10.0.0.0/8, 192.0.2.7,2001:db8::/32"
	base["BILLING_WEBHOOK_RETENTION"] = "168h"
	c, err = config.Load(env(base))
	require.NoError(t, err)
	require.Equal(t, 2.5, c.WebhookRate)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32")}, c.TrustedProxies)
	require.Equal(t, 168*time.Hour, c.WebhookRetention)

	base["BILLING_WEBHOOK_RATE"] = "-1"
	base["BILLING_TRUSTED_PROXIES"] = "10.0.0.0/8,proxy.local"
	base["BILLING_WEBHOOK_RETENTION"] = "1h"
	_, err = config.Load(env(base))
	require.ErrorIs(t, err, config.ErrInvalid)
	for _, name := range []string{"BILLING_WEBHOOK_RATE", "BILLING_TRUSTED_PROXIES", "BILLING_WEBHOOK_RETENTION"} {
		require.Contains(t, err.Error(), name+":")
	}
}
