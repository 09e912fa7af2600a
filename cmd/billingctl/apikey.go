package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dunningworks/billing/api"
	"github.com/dunningworks/billing/internal/page"
)

// apiKeyCommand runs `apikey list` and `apikey revoke`. A revocation is audited as "billingctl:<os user>"
// with origin cli, like the support commands, and takes effect at once: every replica checks revoked_at on
// every request, and the key's console sessions end at their next request.
func apiKeyCommand(ctx context.Context, c cli, pool *pgxpool.Pool, args []string) error {
	switch args[0] {
	case "list":
		return listAPIKeys(ctx, c, pool)
	case "revoke":
		fs := flag.NewFlagSet("apikey revoke", flag.ContinueOnError)
		fs.SetOutput(c.out)
		reason := fs.String("reason", "", "why the key is revoked (required; audited)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("usage: billingctl apikey revoke --reason R KEY_ID")
		}
		k, err := api.RevokeAPIKey(ctx, pool, cliActor(c.getenv), fs.Arg(0), *reason, time.Now().UTC())
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "revoked %s (%s, %s…) at %s\n", k.ID, k.Role, k.Prefix, k.RevokedAt.Format(time.RFC3339))
		return nil
	}
	return fmt.Errorf("unknown apikey command %q", args[0])
}

func listAPIKeys(ctx context.Context, c cli, pool *pgxpool.Pool) error {
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tPREFIX\tCREATED\tREVOKED")
	p := page.Request{Limit: page.Max}
	for {
		l, err := api.ListAPIKeysPage(ctx, pool, p)
		if err != nil {
			return err
		}
		for _, k := range l.Data {
			revoked := "-"
			if k.RevokedAt != nil {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s…\t%s\t%s\n", k.ID, k.Name, k.Role, k.Prefix, k.CreatedAt.Format(time.RFC3339), revoked)
		}
		if l.NextCursor == nil {
			break
		}
		last := l.Data[len(l.Data)-1]
		p.AfterTime, p.AfterID = last.CreatedAt, last.ID
	}
	return tw.Flush()
}
