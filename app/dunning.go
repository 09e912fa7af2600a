package app

import (
	"fmt"

	"github.com/dunningworks/billing/dunning"
	"github.com/dunningworks/billing/internal/config"
)

// DunningPolicies builds the service-wide dunning policy: the built-in default, or BILLING_DUNNING_POLICY's
// file over it. An invalid file stops the process with every problem listed: guessing a retry schedule
// for real customers' cards is worse than not starting.
func DunningPolicies(cfg config.Config) (*dunning.Policies, error) {
	if cfg.DunningPolicy == "" {
		return dunning.NewPolicies(dunning.DefaultPolicy()), nil
	}
	p, err := dunning.LoadPolicyFile(cfg.DunningPolicy)
	if err != nil {
		return nil, fmt.Errorf("BILLING_DUNNING_POLICY: %w", err)
	}
	return dunning.NewPolicies(p), nil
}
