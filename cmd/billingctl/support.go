package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/audit"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/config"
	"github.com/dunningworks/billing/internal/page"
)

// cli is what a support command reads and writes: the environment and stdout (tests pass their own).
type cli struct {
	getenv func(string) string
	out    io.Writer
}

const supportUsage = `  delinquent [--state S] [--min-days N] [--gateway G] [--decline-class C] [--limit N] [--json]
                                   delinquent subscriptions, longest delinquent first
  retry INVOICE --reason R         charge an open invoice now
  mark-paid INVOICE --reason R --reference REF --amount A
                                   record an offline payment of the amount due
  write-off INVOICE --reason R     mark an open invoice uncollectible (bad debt)`

// runSupport runs billingctl's support actions. They call the same billing methods as the support
// API, on a service built by the same wiring as billingd (app), so they need billingd's
// environment (DATABASE_URL, BILLING_ENCRYPTION_KEYS, BILLING_GATEWAYS and the gateways' settings,
// BILLING_SIM_URL for pgsim, BILLING_TEST_CLOCK). Every action is audited as "billingctl:<os user>"
// with role admin and origin cli.
func runSupport(ctx context.Context, c cli, args []string) error {
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	reason := fs.String("reason", "", "why (required for actions; recorded in the audit log)")
	reference := fs.String("reference", "", "mark-paid: the transfer or receipt reference")
	amount := fs.String("amount", "", "mark-paid: the amount received, equal to the amount due")
	state := fs.String("state", "", "delinquent: past_due, suspended or unpaid")
	minDays := fs.Int("min-days", 0, "delinquent: at least this many days delinquent")
	gw := fs.String("gateway", "", "delinquent: the gateway of the latest attempt")
	class := fs.String("decline-class", "", "delinquent: hard or soft")
	limit := fs.Int("limit", page.Default, "delinquent: rows to show")
	asJSON := fs.Bool("json", false, "print JSON")
	id, err := parseWithArg(fs, args)
	if err != nil {
		return fmt.Errorf("%s: %w\nusage:\n%s", cmd, err, supportUsage)
	}
	if cmd == "delinquent" {
		if id != "" {
			return fmt.Errorf("delinquent takes no argument (got %q)", id)
		}
		if *limit < 1 || *limit > page.Max {
			return fmt.Errorf("--limit must be from 1 to %d", page.Max)
		}
	} else if id == "" {
		return fmt.Errorf("%s needs an invoice id\nusage:\n%s", cmd, supportUsage)
	}
	return withService(ctx, c, func(svc *billing.Service) error {
		actor := cliActor(c.getenv)
		var result any
		var err error
		switch cmd {
		case "delinquent":
			list, err := svc.ListDelinquent(ctx, billing.DelinquentFilter{State: *state, MinDays: *minDays, Gateway: *gw,
				DeclineClass: *class}, page.Request{Limit: *limit})
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(c.out, list)
			}
			return printDelinquent(c.out, list.Data, svc.Now())
		case "retry":
			result, err = svc.RetryInvoice(ctx, actor, id, 0, *reason)
		case "mark-paid":
			result, err = svc.MarkInvoicePaid(ctx, actor, id, billing.MarkPaid{Reason: *reason, Reference: *reference, Amount: *amount})
		case "write-off":
			result, err = svc.WriteOffInvoice(ctx, actor, id, 0, *reason)
		}
		if err != nil {
			return err
		}
		return printJSON(c.out, result)
	})
}

// parseWithArg parses flags before or after one positional argument (billingctl retry INV --reason R).
func parseWithArg(fs *flag.FlagSet, args []string) (string, error) {
	var arg string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		arg, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	rest := fs.Args()
	if arg == "" && len(rest) > 0 {
		arg, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("unexpected arguments %q", rest)
	}
	return arg, nil
}

// withService builds the billing service exactly as billingd does (no HTTP server, no workers started)
// and closes it afterwards.
func withService(ctx context.Context, c cli, f func(*billing.Service) error) error {
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
		log.Warn("BILLING_SIM_URL is not set: charges on the sim gateway go to a fresh simulator in this process")
	}
	return f(a.Billing)
}

// cliActor names the operator for the audit log.
func cliActor(getenv func(string) string) billing.Actor {
	name := getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return billing.Actor{ID: "billingctl:" + name, Role: "admin", RequestID: "cli_" + hex.EncodeToString(b), Origin: audit.OriginCLI}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printDelinquent(w io.Writer, rows []billing.DelinquentRow, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBSCRIPTION\tCUSTOMER\tSTATUS\tDUE\tDAYS\tATTEMPTS\tNEXT RETRY\tLAST DECLINE\tPAUSED")
	for _, r := range rows {
		next := "-"
		if r.NextAttemptAt != nil {
			next = r.NextAttemptAt.Sub(now).Round(time.Minute).String()
			next = "in " + strings.TrimSuffix(strings.TrimSuffix(next, "0s"), "0m")
		}
		decline := "-"
		if r.LastDeclineCode != nil {
			decline = *r.LastDeclineCode
			if r.LastDeclineClass != nil {
				decline += " (" + *r.LastDeclineClass + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\t%d\t%d\t%s\t%s\t%v\n", r.SubscriptionID, r.CustomerID, r.Status, r.AmountDue,
			r.Currency, r.DaysDelinquent, r.Attempts, next, decline, r.DunningPaused)
	}
	if len(rows) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	return tw.Flush()
}
