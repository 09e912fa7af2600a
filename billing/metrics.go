package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/store"
)

// chargeMetrics count what the gateways answered, per replica (sum them across replicas).
type chargeMetrics struct {
	outcomes *prometheus.CounterVec
}

func newChargeMetrics(reg prometheus.Registerer) chargeMetrics {
	m := chargeMetrics{outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "billing_charge_outcomes_total",
		Help: "Charge attempts settled, by gateway and outcome (succeeded, declined, unknown, not_sent, failed, refused), with the decline class and code for declines and the gateway's code for refusals. An attempt is counted when it is first answered and again only when an unknown one is settled.",
	}, []string{"gateway", "outcome", "decline_class", "decline_code"})}
	if reg != nil {
		reg.MustRegister(m.outcomes)
	}
	return m
}

// observeOutcome counts one recorded answer of the gateway for an attempt that was pending or unknown.
func (m chargeMetrics) observeOutcome(gw, from string, out gateway.Outcome) {
	if m.outcomes == nil {
		return
	}
	switch out.Kind {
	case gateway.Declined:
		class := out.DeclineClass
		if class != gateway.Hard {
			class = gateway.Soft
		}
		code := out.DeclineCode
		if code == "" {
			code = "declined"
		}
		m.outcomes.WithLabelValues(gw, string(gateway.Declined), string(class), code).Inc()
	case gateway.Succeeded:
		m.outcomes.WithLabelValues(gw, string(gateway.Succeeded), "", "").Inc()
	case gateway.Canceled:
		m.outcomes.WithLabelValues(gw, "failed", "", "").Inc()
	case gateway.Refused:
		m.outcomes.WithLabelValues(gw, string(gateway.Refused), "", out.DeclineCode).Inc()
	default:
		if from == "pending" { // an unknown attempt looked up again and still unknown is not counted twice
			m.outcomes.WithLabelValues(gw, string(gateway.Unknown), "", "").Inc()
		}
	}
}

func (m chargeMetrics) observeNotSent(gw string) {
	if m.outcomes != nil {
		m.outcomes.WithLabelValues(gw, "not_sent", "", "").Inc()
	}
}

// UnresolvedAttempts are a gateway's attempts whose outcome is not known yet.
type UnresolvedAttempts struct {
	Gateway string
	Count   int
	// OldestAge is how long the oldest of them has waited (domain clock).
	OldestAge time.Duration
}

// OperationalFigures are the gauges operations watch, computed from the tables at the domain clock's now.
type OperationalFigures struct {
	// RenewalLag is how long the oldest due renewal has waited to be invoiced (0 when none is due).
	RenewalLag time.Duration
	Unresolved []UnresolvedAttempts
}

// Operational computes OperationalFigures.
func (s *Service) Operational(ctx context.Context) (OperationalFigures, error) {
	now := s.clock.Now()
	q := s.q(s.pool)
	var f OperationalFigures
	oldest, err := q.OldestDueRenewal(ctx, now)
	if err != nil {
		return f, fmt.Errorf("oldest due renewal: %w", err)
	}
	f.RenewalLag = max(0, now.Sub(oldest))
	rows, err := q.UnresolvedAttemptsByGateway(ctx)
	if err != nil {
		return f, fmt.Errorf("unresolved attempts: %w", err)
	}
	for _, r := range rows {
		f.Unresolved = append(f.Unresolved, unresolvedFrom(r, now))
	}
	return f, nil
}

func unresolvedFrom(r store.UnresolvedAttemptsByGatewayRow, now time.Time) UnresolvedAttempts {
	return UnresolvedAttempts{Gateway: r.Gateway, Count: int(r.N), OldestAge: max(0, now.Sub(r.Oldest))}
}
