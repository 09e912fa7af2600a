package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/internal/config"
	"github.com/dunningworks/billing/reconcile"
)

const reconcileUsage = `  reconcile [--from T --to T] [--gateway G] [--json]
                                   compare the gateways' transactions in [from, to) with our payments and
                                   ledger, store the findings (default: the previous day, domain clock);
                                   T is RFC 3339 or YYYY-MM-DD (UTC)`

// runReconcile reconciles on demand, with the same service (and the same idempotent findings) as the
// daily job, built by billingd's own wiring. It needs billingd's environment; for the sim gateway that
// includes BILLING_SIM_URL, or it would reconcile against an empty simulator of its own.
func runReconcile(ctx context.Context, c cli, args []string) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fromS := fs.String("from", "", "window start, inclusive")
	toS := fs.String("to", "", "window end, exclusive")
	gw := fs.String("gateway", "", "one gateway (default: every enabled gateway)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("reconcile: %w\nusage:\n%s", err, reconcileUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("reconcile: unexpected arguments %q", fs.Args())
	}
	if (*fromS == "") != (*toS == "") {
		return errors.New("reconcile: give both --from and --to, or neither (the previous day)")
	}
	var from, to time.Time
	if *fromS != "" {
		var err error
		if from, err = parseWindowTime(*fromS); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		if to, err = parseWindowTime(*toS); err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		if !from.Before(to) {
			return errors.New("reconcile: --from must be before --to")
		}
	}

	cfg, err := config.Load(c.getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if a.Sim != nil {
		log.Warn("BILLING_SIM_URL is not set: the sim gateway is a fresh simulator in this process, with no transactions")
	}
	gateways := cfg.Gateways
	if *gw != "" {
		gateways = []string{*gw}
	}
	if from.IsZero() {
		from, to = reconcile.PreviousDay(a.Clock.Now())
	}
	var runs []reconcile.Run
	var errs []error
	for _, g := range gateways {
		run, err := a.Reconcile.Run(ctx, g, from, to)
		if err != nil {
			errs = append(errs, err)
		}
		if run.ID != "" {
			runs = append(runs, run)
		}
	}
	if *asJSON {
		if err := printJSON(c.out, runs); err != nil {
			return err
		}
	} else if err := printRuns(c.out, runs); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func parseWindowTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor YYYY-MM-DD", s)
	}
	return t, nil
}

func printRuns(w io.Writer, runs []reconcile.Run) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tGATEWAY\tFROM\tTO\tSTATUS\tMATCHED\tFINDINGS\tNEW\tUNSETTLED\tUNVERIFIED")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", r.ID, r.Gateway, r.From.Format(time.RFC3339), r.To.Format(time.RFC3339),
			r.Status, r.Matched, r.Findings, r.NewFindings, r.Unsettled, r.Unverified)
	}
	if len(runs) == 0 {
		fmt.Fprintln(tw, "(no runs)")
	}
	return tw.Flush()
}
