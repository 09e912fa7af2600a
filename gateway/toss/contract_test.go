package toss_test

import (
	"testing"
	"time"

	"github.com/dunningworks/billing/gateway/gatewaytest"
	"github.com/dunningworks/billing/gateway/pgsim"
)

// TestContractAgainstPGSim runs the gateway contract for the toss adapter against an in-process pgsim.
// The short client timeout keeps the lost-answer cases fast.
func TestContractAgainstPGSim(t *testing.T) {
	t.Parallel()
	gatewaytest.RunContract(t, func(t *testing.T) gatewaytest.Env {
		sim := gatewaytest.StartSim(t, pgsim.Options{Seed: 1}, 300*time.Millisecond)
		return gatewaytest.Env{Gateway: sim.Gateway, Bank: sim.Bank}
	})
}
