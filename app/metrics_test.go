package app_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// metricNames are the billing_* names a file mentions.
func metricNames(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	seen := map[string]bool{}
	var out []string
	for _, m := range regexp.MustCompile(`\bbilling_[a-z_]*[a-z]\b`).FindAllString(string(raw), -1) {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

// Every metric the alert rules and the Grafana dashboard read is one billingd exposes, with the values
// the alerts expect: a renamed metric would silently turn an alert off.
func TestAlertsAndDashboardReadExposedMetrics(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	require.Equal(t, 201, env.Subscribe(env.Customer(pgsim.BehaviorOK), plan).Status)
	require.Equal(t, 402, env.Subscribe(env.Customer(pgsim.BehaviorStolen), plan).Status)

	res := env.Do("GET", "/metrics", "", nil)
	require.Equal(t, 200, res.Status)
	body := string(res.Body)
	require.Contains(t, body, `billing_charge_outcomes_total{decline_class="",decline_code="",gateway="sim",outcome="succeeded"} 1`)
	require.Contains(t, body, `billing_charge_outcomes_total{decline_class="hard",decline_code="INVALID_STOPPED_CARD",gateway="sim",outcome="declined"} 1`)
	require.Contains(t, body, "billing_renewal_lag_seconds 0")
	require.Contains(t, body, `billing_unknown_attempts{gateway="sim"} 0`)
	require.Contains(t, body, `billing_queue_depth{queue="default",state="available"}`)

	// Absent until their first event: a gateway's first webhook, a refused gateway call, a merchant-side
	// refusal (its name is checked by TestBillingKeyIssueWithRefusedCredentialsIs502AndCounted).
	optional := map[string]bool{"billing_webhook_last_received_age_seconds": true, "billing_gateway_refused_total": true,
		"billing_gateway_merchant_refusals_total": true}
	for _, file := range []string{"../deploy/prometheus/alerts.yml", "../deploy/grafana/billing-dashboard.json"} {
		names := metricNames(t, file)
		require.NotEmpty(t, names, file)
		for _, name := range names {
			if optional[name] {
				continue
			}
			require.Regexp(t, `(?m)^`+name+`[{ ]`, body, "%s reads %s, which /metrics does not expose", file, name)
		}
	}
}
