package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dunningworks/billing/billing"
)

// operationsCollector exposes the figures docs/operations.md's alerts watch, computed at scrape time from
// the tables (domain clock), so every replica reports the same truth: aggregate them with max(), not sum().
type operationsCollector struct {
	b        *billing.Service
	pool     *pgxpool.Pool
	gateways []string
	log      *slog.Logger

	renewalLag, unresolvedAge, unresolved, queueDepth, webhookAge *prometheus.Desc
}

func newOperationsCollector(b *billing.Service, pool *pgxpool.Pool, gateways []string, log *slog.Logger) *operationsCollector {
	return &operationsCollector{b: b, pool: pool, gateways: gateways, log: log,
		renewalLag: prometheus.NewDesc("billing_renewal_lag_seconds",
			"How long the oldest due renewal has waited to be invoiced (0 when nothing is due), domain clock.", nil, nil),
		unresolvedAge: prometheus.NewDesc("billing_unknown_attempt_age_seconds",
			"Age of the oldest charge attempt whose outcome is not known yet (pending or unknown), per gateway.", []string{"gateway"}, nil),
		unresolved: prometheus.NewDesc("billing_unknown_attempts",
			"Charge attempts whose outcome is not known yet (pending or unknown), per gateway.", []string{"gateway"}, nil),
		queueDepth: prometheus.NewDesc("billing_queue_depth",
			"River jobs waiting or running, per queue and state (available, scheduled, retryable, running).", []string{"queue", "state"}, nil),
		webhookAge: prometheus.NewDesc("billing_webhook_last_received_age_seconds",
			"Time since the gateway's last webhook arrived (domain clock); absent until the first one.", []string{"gateway"}, nil),
	}
}

func (c *operationsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.renewalLag, c.unresolvedAge, c.unresolved, c.queueDepth, c.webhookAge} {
		ch <- d
	}
}

func (c *operationsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if f, err := c.b.Operational(ctx); err != nil {
		c.log.Warn("operational metrics unavailable", "err", err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.renewalLag, prometheus.GaugeValue, f.RenewalLag.Seconds())
		seen := map[string]bool{}
		for _, u := range f.Unresolved {
			seen[u.Gateway] = true
			ch <- prometheus.MustNewConstMetric(c.unresolvedAge, prometheus.GaugeValue, u.OldestAge.Seconds(), u.Gateway)
			ch <- prometheus.MustNewConstMetric(c.unresolved, prometheus.GaugeValue, float64(u.Count), u.Gateway)
		}
		for _, gw := range c.gateways { // a zero, not an absent series, for a gateway with nothing waiting
			if !seen[gw] {
				ch <- prometheus.MustNewConstMetric(c.unresolvedAge, prometheus.GaugeValue, 0, gw)
				ch <- prometheus.MustNewConstMetric(c.unresolved, prometheus.GaugeValue, 0, gw)
			}
		}
	}
	// River's table is not part of sqlc's schema (River migrates it), as in the sweeper's backlog check.
	rows, err := c.pool.Query(ctx, `SELECT queue, state::text, count(*) FROM river_job
		WHERE state IN ('available', 'scheduled', 'retryable', 'running') GROUP BY queue, state`)
	if err != nil {
		c.log.Warn("queue depth metric unavailable", "err", err)
	} else {
		depth := map[[2]string]float64{}
		for rows.Next() {
			var q, st string
			var n int64
			if err := rows.Scan(&q, &st, &n); err == nil {
				depth[[2]string{q, st}] = float64(n)
			}
		}
		rows.Close()
		for _, q := range []string{"default", QueueMaintenance} {
			for _, st := range []string{"available", "scheduled", "retryable", "running"} {
				k := [2]string{q, st}
				ch <- prometheus.MustNewConstMetric(c.queueDepth, prometheus.GaugeValue, depth[k], q, st)
				delete(depth, k)
			}
		}
		for k, n := range depth {
			ch <- prometheus.MustNewConstMetric(c.queueDepth, prometheus.GaugeValue, n, k[0], k[1])
		}
	}
	health, err := c.b.WebhookHealth(ctx, c.gateways)
	if err != nil {
		c.log.Warn("webhook age metric unavailable", "err", err)
		return
	}
	now := c.b.Now()
	for _, h := range health {
		if h.LastReceivedAt != nil {
			ch <- prometheus.MustNewConstMetric(c.webhookAge, prometheus.GaugeValue, max(0, now.Sub(*h.LastReceivedAt).Seconds()), h.Gateway)
		}
	}
}
