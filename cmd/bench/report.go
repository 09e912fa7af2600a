package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one run: the JSON in bench/out and the table on stdout.
type Report struct {
	Mode     mode            `json:"mode"`
	Partial  bool            `json:"partial,omitempty"`
	Settings serviceSettings `json:"service_settings"`
	Started  time.Time       `json:"started"`
	Seconds  float64         `json:"seconds"`
	Host     Host            `json:"host"`
	Pgbench  *PgbenchResult  `json:"pgbench,omitempty"`
	River    *RiverResult    `json:"river_noop,omitempty"`
	Day0     *DayResult      `json:"billing_day_0ms,omitempty"`
	Day250   *DayResult      `json:"billing_day_250ms,omitempty"`
	DayAPI   *DayResult      `json:"billing_day_with_api_load,omitempty"`
	DayBook  *DayResult      `json:"billing_day_among_book,omitempty"`
	Sweep    *SweepResult    `json:"sweep,omitempty"`
	API      *APIResult      `json:"api,omitempty"`
	Webhooks *WebhookResult  `json:"webhooks,omitempty"`
	Targets  []Target        `json:"targets"`
}

// Target is one of the benchmark's targets (issue 9's, issue 15's, and issue 16's webhook receipt), judged on this run.
type Target struct {
	Name  string `json:"name"`
	Want  string `json:"want"`
	Got   string `json:"got"`
	Met   string `json:"met"` // yes, no, or n/a (not measured in this mode), est (extrapolated)
	Notes string `json:"notes,omitempty"`
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func (r *Report) evaluate() {
	add := func(name, want, got, met, notes string) {
		r.Targets = append(r.Targets, Target{Name: name, Want: want, Got: got, Met: met, Notes: notes})
	}
	if d := r.Day0; d != nil {
		add("billing day 0 ms: renewals/s", ">= 1,000/s", fmt.Sprintf("%.0f/s", d.RenewalsPerS), yesNo(d.Drained && d.RenewalsPerS >= 1000), "")
		if r.Pgbench != nil && r.Pgbench.TPS > 0 {
			pct := 100 * d.RenewalsPerS / r.Pgbench.TPS
			add("billing day 0 ms vs pgbench TPS", ">= 40%", fmt.Sprintf("%.0f%%", pct), yesNo(d.Drained && pct >= 40), "")
		}
	}
	for _, d := range []*DayResult{r.Day0, r.Day250, r.DayAPI, r.DayBook} {
		if d != nil && d.DoubleCharges > 0 {
			add(d.Name+": no invoice charged twice", "0", fmt.Sprint(d.DoubleCharges), "NO", "")
		}
	}
	if d := r.Day0; d != nil && r.Pgbench != nil && r.Pgbench.PostgresMsPerTx > 0 {
		tx := d.PostgresMsPerRenewal / r.Pgbench.PostgresMsPerTx
		add("Postgres CPU per renewal, in TPC-B transactions", "<= 2", fmt.Sprintf("%.1f", tx), yesNo(d.Drained && tx <= 2), "")
	}
	if d := r.Day0; d != nil {
		add("commits per renewal", "<= 0.1", fmt.Sprintf("%.2f", d.CommitsPerRenew), yesNo(d.Drained && d.CommitsPerRenew <= 0.1), "")
	}
	if d, z := r.Day250, r.Day0; d != nil && z != nil && z.RenewalsPerS > 0 {
		pct := 100 * d.RenewalsPerS / z.RenewalsPerS
		add("billing day 250 ms vs 0 ms", ">= 80%", fmt.Sprintf("%.0f%%", pct), yesNo(d.Drained && pct >= 80), "")
	}
	if d := r.Day0; d != nil {
		if d.Subscriptions >= 1_000_000 {
			if d.Drained {
				add("1M billing day drains", "< 20 min", fmtDur(d.DrainSeconds), yesNo(d.DrainSeconds < 1200), "")
			} else {
				got := fmt.Sprintf("not drained: %d paid in %s", d.Paid, fmtDur(d.DrainSeconds))
				if d.RenewalsPerS > 0 {
					got += fmt.Sprintf(", ~%s at that rate", fmtDur(float64(d.Subscriptions)/d.RenewalsPerS))
				}
				add("1M billing day drains", "< 20 min", got, "NO", "")
			}
			add("1M billing day RSS", "< 500 MiB", fmt.Sprintf("%.0f MiB", d.RSSMiB), yesNo(d.RSSMiB < 500), "")
		} else {
			rate := d.SteadyPerS
			if r.Day250 != nil {
				rate = min(rate, r.Day250.SteadyPerS)
			}
			if rate > 0 {
				est := 1_000_000 / rate
				met := "est no"
				if est < 1200 {
					met = "est yes"
				}
				add("1M billing day drains", "< 20 min", "~"+fmtDur(est), met,
					fmt.Sprintf("extrapolated from the slower steady rate (%.0f/s); make bench-full measures it", rate))
			}
			rss := d.RSSMiB
			if r.Day250 != nil {
				rss = max(rss, r.Day250.RSSMiB)
			}
			add("billing day RSS", "< 500 MiB", fmt.Sprintf("%.0f MiB", rss), yesNo(rss < 500),
				fmt.Sprintf("at %d subscriptions; make bench-full measures 1M", d.Subscriptions))
		}
	}
	if s := r.Sweep; s != nil {
		note := ""
		if s.Subscriptions < 1_000_000 {
			note = fmt.Sprintf("quick mode: %d due among %d (full: among 1M)", s.Due, s.Subscriptions)
		}
		add(fmt.Sprintf("sweep %s due among %s", kfmt(s.Due), kfmt(s.Subscriptions)), "< 50 ms", fmt.Sprintf("%.1f ms", s.FirstMs), yesNo(s.FirstMs < 50), note)
		add("DueRenewals plan", "index range scan, no seq scan", s.PlanSummary, yesNo(s.RangeScan), "")
	}
	if b, z := r.DayBook, r.Day0; b != nil && z != nil && z.PostgresMsPerRenewal > 0 {
		pct := 100 * b.PostgresMsPerRenewal / z.PostgresMsPerRenewal
		add(fmt.Sprintf("Postgres CPU per renewal, %s due among %s vs the %s day", kfmt(b.Subscriptions), kfmt(b.Book), kfmt(z.Subscriptions)),
			"<= 115%", fmt.Sprintf("%.0f%% (%.2f vs %.2f ms)", pct, b.PostgresMsPerRenewal, z.PostgresMsPerRenewal), yesNo(b.Drained && z.Drained && pct <= 115), "")
	}
	if d := r.DayAPI; d != nil && d.GetDuring != nil {
		g := d.GetDuring
		add(fmt.Sprintf("GET subscription p99 at %.0f/s while a billing day drains", g.Rate), "< 25 ms", fmt.Sprintf("%.1f ms", g.P99Ms),
			yesNo(g.P99Ms < 25 && g.Errors == 0 && d.Drained),
			fmt.Sprintf("%.0f of the GETs' %.0f s overlapped the drain (%s day drained in %s)", min(d.DrainSeconds, g.Seconds), g.Seconds, kfmt(d.Subscriptions), fmtDur(d.DrainSeconds)))
	}
	if a := r.API; a != nil {
		add(fmt.Sprintf("GET subscription p99 at %.0f/s", a.Get.Rate), "< 10 ms", fmt.Sprintf("%.1f ms", a.Get.P99Ms),
			yesNo(a.Get.P99Ms < 10 && a.Get.Errors == 0), "")
	}
	if h := r.Webhooks; h != nil {
		add(fmt.Sprintf("webhook receipt p99 at %.0f/s during a billing day (issue 16)", h.Receipt.Rate), "< 50 ms",
			fmt.Sprintf("%.1f ms", h.Receipt.P99Ms), yesNo(h.Receipt.P99Ms < 50 && h.Receipt.Errors == 0), "")
	}
}

func fmtDur(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return fmt.Sprintf("%.1fs", s)
}

func kfmt(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func pct(a, b float64) string {
	if b <= 0 {
		return ""
	}
	return fmt.Sprintf("%.0f%%", 100*a/b)
}

// Table is the human summary: the baselines, every figure with its ratio to them, and the targets.
func (r *Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nbilling-day benchmark, %s mode: %d CPUs, load average %s -> %s, Postgres %s, commit %s, %.0fs\n",
		r.Mode.Name, r.Host.CPUs, r.Host.LoadAvg, r.Host.LoadAvgEnd, r.Host.Postgres, r.Host.Commit, r.Seconds)
	fmt.Fprintf(&b, "billingd settings: %d River workers, gateway concurrency %d, fetch cooldown %s, pool %d conns\n\n",
		r.Settings.Workers, r.Settings.GatewayLimit, r.Settings.Cooldown, r.Settings.PoolConns)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	tps, riv := 0.0, 0.0
	if r.Pgbench != nil {
		tps = r.Pgbench.TPS
	}
	if r.River != nil {
		riv = r.River.JobsPerSecond
	}
	fmt.Fprintln(w, "figure\tvalue\tvs pgbench TPS\tvs River no-op")
	fmt.Fprintln(w, "------\t-----\t--------------\t--------------")
	if p := r.Pgbench; p != nil {
		var each []string
		for _, x := range p.Runs {
			each = append(each, fmt.Sprintf("%.0f", x.TPS))
		}
		fmt.Fprintf(w, "pgbench TPC-B-like (scale %d, %d clients, %ds x %d)\t%.0f TPS (runs %s; %.1f ms avg)\t100%%\t\n", p.Scale, p.Clients, p.Seconds, len(p.Runs), p.TPS, strings.Join(each, ", "), p.Latency)
		fmt.Fprintf(w, "  Postgres CPU per TPC-B transaction\t%.2f ms\t\t\n", p.PostgresMsPerTx)
	}
	if v := r.River; v != nil {
		fmt.Fprintf(w, "River no-op jobs (%d workers, %s cooldown)\t%.0f jobs/s (%.2f commits/job)\t%s\t100%%\n", v.Workers, v.FetchCooldown, v.JobsPerSecond, v.CommitsPerJob, pct(v.JobsPerSecond, tps))
	}
	for _, d := range []*DayResult{r.Day0, r.Day250, r.DayAPI, r.DayBook} {
		if d == nil {
			continue
		}
		head := fmt.Sprintf("billing day %s, %d ms gateway", kfmt(d.Subscriptions), d.LatencyMs)
		if d.Book > 0 {
			head = fmt.Sprintf("billing day %s due among %s, %d ms gateway", kfmt(d.Subscriptions), kfmt(d.Book), d.LatencyMs)
		}
		if d.GetDuring != nil {
			head += " + API load"
		}
		drained := ""
		if !d.Drained {
			drained = fmt.Sprintf(" (NOT drained: %d paid)", d.Paid)
		}
		fmt.Fprintf(w, "%s: renewals/s\t%.0f/s (steady %.0f/s)%s\t%s\t%s\n", head, d.RenewalsPerS, d.SteadyPerS, drained, pct(d.RenewalsPerS, tps), pct(d.RenewalsPerS, riv))
		fmt.Fprintf(w, "  time to drain\t%s\t\t\n", fmtDur(d.DrainSeconds))
		fmt.Fprintf(w, "  billingd replicas; charges at the gateway; invoices charged twice\t%d; %d; %d\t\t\n", d.Replicas, d.GatewayCharges, d.DoubleCharges)
		if d.Replicas > 1 {
			fmt.Fprintf(w, "  renew_batch job runs per replica\t%v\t\t\n", d.BatchRuns)
		}
		fmt.Fprintf(w, "  due -> paid p50 / p99\t%.2fs / %.2fs\t\t\n", d.P50DueToPaid, d.P99DueToPaid)
		fmt.Fprintf(w, "  Postgres commits per renewal\t%.1f (%.0f commits/s)\t%s\t\n", d.CommitsPerRenew, d.CommitsPerRenew*d.RenewalsPerS, pct(d.CommitsPerRenew*d.RenewalsPerS, tps))
		fmt.Fprintf(w, "  billingd peak RSS\t%.0f MiB\t\t\n", d.RSSMiB)
		costRatio := ""
		if r.Pgbench != nil && r.Pgbench.PostgresMsPerTx > 0 {
			costRatio = fmt.Sprintf("%.1f TPC-B txs", d.PostgresMsPerRenewal/r.Pgbench.PostgresMsPerTx)
		}
		fmt.Fprintf(w, "  CPU per renewal: Postgres / billingd\t%.2f ms / %.2f ms\t%s\t\n", d.PostgresMsPerRenewal, d.BillingdMsPerRenewal, costRatio)
		c := d.CPU
		fmt.Fprintf(w, "  CPU (cores of %d)\tbusy %.2f: billingd %.2f, postgres %.2f, bench+pgsim %.2f, other %.2f, steal %.2f\t\t\n",
			c.MachineCores, c.MachineBusy, c.Billingd, c.Postgres, c.BenchProcess, c.OtherOnHost, c.Steal)
		fmt.Fprintf(w, "  backend samples\t%s\t\t\n", strings.Join(topWaits(d.Waits, 4), ", "))
		if g := d.GetDuring; g != nil {
			fmt.Fprintf(w, "  %s at %.0f/s during the day: p50 / p99\t%.1f ms / %.1f ms (max %.0f ms, %d errors)\t\t\n", g.Endpoint, g.Rate, g.P50Ms, g.P99Ms, g.MaxMs, g.Errors)
		}
	}
	if s := r.Sweep; s != nil {
		fmt.Fprintf(w, "sweep, %s due among %s (median of 7)\t%.1f ms, %d enqueued (fastest %.1f ms; its reads alone %.1f ms; with the jobs queued %.1f ms)\t\t\n",
			kfmt(s.Due), kfmt(s.Subscriptions), s.FirstMs, s.Enqueued, s.FirstMinMs, s.ReadMs, s.RepeatMs)
		fmt.Fprintf(w, "  subscriptions rows read per sweep\tindex %d (%d scans), seq %d (%d scans)\t\t\n", s.IdxTupFetch, s.IdxScans, s.SeqTupRead, s.SeqScans)
		fmt.Fprintf(w, "  DueRenewals plan\t%s\t\t\n", s.PlanSummary)
	}
	if a := r.API; a != nil {
		for _, l := range []LoadResult{a.Get, a.ChangePlan} {
			errs := ""
			if l.Errors > 0 {
				errs = fmt.Sprintf(", %d errors", l.Errors)
			}
			vs := ""
			if r.Pgbench != nil && r.Pgbench.Latency > 0 {
				vs = fmt.Sprintf("p50 = %.1fx pgbench latency", l.P50Ms/r.Pgbench.Latency)
			}
			fmt.Fprintf(w, "%s at %.0f/s open loop: p50 / p99\t%.1f ms / %.1f ms (max %.0f ms%s)\t%s\t\n", l.Endpoint, l.Rate, l.P50Ms, l.P99Ms, l.MaxMs, errs, vs)
			c := l.CPU
			fmt.Fprintf(w, "  CPU (cores of %d)\tbusy %.2f: billingd %.2f, postgres %.2f, bench %.2f, other %.2f\t\t\n", c.MachineCores, c.MachineBusy, c.Billingd, c.Postgres, c.BenchProcess, c.OtherOnHost)
		}
	}
	if h := r.Webhooks; h != nil {
		l := h.Receipt
		errs := ""
		if l.Errors > 0 {
			errs = fmt.Sprintf(", %d errors: %s", l.Errors, l.FirstErr)
		}
		fmt.Fprintf(w, "%s at %.0f/s open loop, during a %s billing day: p50 / p99\t%.1f ms / %.1f ms (max %.0f ms%s)\t\t\n",
			l.Endpoint, l.Rate, kfmt(h.Subscriptions), l.P50Ms, l.P99Ms, l.MaxMs, errs)
		fmt.Fprintf(w, "  inside billingd (its histogram, every receipt of the run): p50 / p99 at most\t%.1f ms / %.1f ms of %d\t\t\n", h.Server.P50LeMs, h.Server.P99LeMs, h.Server.Requests)
		fmt.Fprintf(w, "  inbox: rows / processed, receipt -> processed p50 / p99\t%d / %d, %.2fs / %.2fs (simulator's own webhooks %d; %d renewals paid while sending)\t\t\n",
			h.Inbox, h.Processed, h.ProcessP50, h.ProcessP99, h.SimDelivered, h.Paid)
		c := l.CPU
		fmt.Fprintf(w, "  CPU (cores of %d)\tbusy %.2f: billingd %.2f, postgres %.2f, bench+pgsim %.2f, other %.2f\t\t\n", c.MachineCores, c.MachineBusy, c.Billingd, c.Postgres, c.BenchProcess, c.OtherOnHost)
	}
	_ = w.Flush()
	if len(r.Targets) > 0 {
		b.WriteString("\n")
		w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "target\twant\tgot\tmet")
		fmt.Fprintln(w, "------\t----\t---\t---")
		for _, t := range r.Targets {
			notes := ""
			if t.Notes != "" {
				notes = "  (" + t.Notes + ")"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s%s\n", t.Name, t.Want, t.Got, t.Met, notes)
		}
		_ = w.Flush()
	}
	return b.String()
}
