package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/dunning"
	"github.com/dunningworks/billing/dunning/simulate"
	"github.com/dunningworks/billing/money"
)

const simulateUsage = `  dunning simulate --policy FILE [--since 90d]
                                   replay the dunning history against a candidate policy, next to the current one`

// runSimulate is `billingctl dunning simulate`: the candidate file is read like BILLING_DUNNING_POLICY
// (keys over the built-in default), replayed over the episodes that first failed in the window, and
// printed next to the record and the current policy replayed by the same model.
func runSimulate(ctx context.Context, c cli, args []string) error {
	if len(args) == 0 || args[0] != "simulate" {
		return fmt.Errorf("usage:\n%s", simulateUsage)
	}
	fs := flag.NewFlagSet("dunning simulate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("policy", "", "the candidate policy file (YAML or JSON, as BILLING_DUNNING_POLICY)")
	sinceFlag := fs.String("since", "90d", "how far back to replay (e.g. 30d, 90d, 720h)")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("dunning simulate: %w\nusage:\n%s", err, simulateUsage)
	}
	if *file == "" {
		return fmt.Errorf("dunning simulate: --policy is required\nusage:\n%s", simulateUsage)
	}
	since, err := dunning.ParseDuration(*sinceFlag)
	if err != nil || since <= 0 {
		return fmt.Errorf("dunning simulate: --since %q: a positive duration such as 90d", *sinceFlag)
	}
	candidate, err := dunning.LoadPolicyFile(*file)
	if err != nil {
		return err
	}
	return withService(ctx, c, func(svc *billing.Service) error {
		cmp, err := svc.SimulatePolicy(ctx, candidate, svc.Now().Add(-since.D()))
		if err != nil {
			return err
		}
		return printComparison(c.out, cmp, *file)
	})
}

func printComparison(out io.Writer, cmp billing.PolicyComparison, file string) error {
	fmt.Fprintf(out, "Dunning episodes that first failed from %s to %s: %d\n\n", cmp.Since.UTC().Format(time.RFC3339),
		cmp.AsOf.UTC().Format(time.RFC3339), cmp.Recorded.Episodes)
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', tabwriter.AlignRight)
	cols := []simulate.Figures{cmp.Recorded, cmp.Current, cmp.Candidate}
	row := func(label string, f func(simulate.Figures) string) {
		cells := []string{label}
		for _, c := range cols {
			cells = append(cells, f(c))
		}
		fmt.Fprintln(w, strings.Join(cells, "\t")+"\t")
	}
	row("", func(simulate.Figures) string { return "" })
	fmt.Fprintln(w, "\trecorded\tcurrent policy\tcandidate ("+file+")\t")
	currencies := map[string]bool{}
	for _, c := range cols {
		for _, cur := range c.Currencies() {
			currencies[cur] = true
		}
	}
	for _, cur := range sortedKeys(currencies) {
		row("recovered revenue "+cur, func(f simulate.Figures) string { return money.String(f.RecoveredRevenue[cur], cur) })
	}
	row("recovery rate", func(f simulate.Figures) string { return fmt.Sprintf("%.1f %%", 100*f.RecoveryRate()) })
	row("episodes recovered", func(f simulate.Figures) string { return fmt.Sprint(f.Recovered) })
	row("charges sent", func(f simulate.Figures) string { return fmt.Sprint(f.ChargesSent) })
	row("customers canceled", func(f simulate.Figures) string { return fmt.Sprint(f.CustomersCanceled) })
	row("still in dunning", func(f simulate.Figures) string { return fmt.Sprint(f.Open) })
	row("days to recover (mean)", func(f simulate.Figures) string { return fmt.Sprintf("%.1f", f.DaysToRecover) })
	if err := w.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprint(out, `
Assumptions (dunning/simulate): a card that paid after declining healed halfway between its last decline
and that payment; a card whose record ends declined never heals; a hard-declined card is never retried;
money from a new card, the backup card or an offline payment arrives when it did; nothing after the end
of the record is known. "current policy" is the running policy replayed by the same model: where it
differs from "recorded", the model (or a support action) explains the gap.
`)
	return err
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
