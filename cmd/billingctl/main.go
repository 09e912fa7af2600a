// Command billingctl is the operator's tool.
//
//	billingctl migrate                         apply migrations (same as billingd migrate)
//	billingctl db-reset                        drop and recreate the database, then migrate (as the owner)
//	billingctl apikey create --role R [--name N]
//	billingctl apikey list
//	billingctl apikey revoke --reason R KEY_ID     audited; the key stops working at once, its console sessions end
//	billingctl rotate-keys [--batch N]          re-encrypt billing keys and webhook secrets under the newest key version
//	billingctl delinquent | retry | mark-paid | write-off   support actions (see support.go), audited
//	billingctl reconcile [--from T --to T] [--gateway G]     reconcile gateways against our books (reconcile.go)
//	billingctl dunning simulate --policy FILE [--since 90d]  replay dunning history against a candidate policy (simulate.go)
//
// It reads DATABASE_URL (and, for rotate-keys, BILLING_ENCRYPTION_KEYS) like billingd; migrate and db-reset
// connect as the schema owner (BILLING_MIGRATION_DATABASE_URL, else DATABASE_URL) and grant DATABASE_URL's role.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dunningworks/billing/api"
	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/billingkey"
	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/config"
	"github.com/dunningworks/billing/migrations"
	"github.com/dunningworks/billing/notify"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "billingctl:", err)
		os.Exit(1)
	}
}

const usage = `usage: billingctl <command>
  migrate                          apply the service's and River's migrations
  db-reset                         drop and recreate the database in DATABASE_URL, then migrate
  apikey create --role R [--name N] create an API key (prints the token once)
  apikey list                      list the API keys (never a token)
  apikey revoke --reason R KEY_ID  revoke an API key (audited): it stops authenticating at once, everywhere
  rotate-keys [--batch N]          re-encrypt billing keys and webhook secrets under the newest BILLING_ENCRYPTION_KEYS version
` + supportUsage + "\n" + reconcileUsage + "\n" + simulateUsage

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Println(usage)
		return nil
	}
	url := os.Getenv("DATABASE_URL")
	if url == "" && args[0] != "migrate" && args[0] != "db-reset" {
		return errors.New("DATABASE_URL is required")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	switch args[0] {
	case "migrate":
		return migrate(ctx, false)
	case "db-reset":
		return migrate(ctx, true)
	case "apikey":
		if len(args) >= 2 && (args[1] == "revoke" || args[1] == "list") {
			return withPool(ctx, url, func(pool *pgxpool.Pool) error {
				return apiKeyCommand(ctx, cli{getenv: os.Getenv, out: os.Stdout}, pool, args[1:])
			})
		}
		if len(args) < 2 || args[1] != "create" {
			return errors.New("usage: billingctl apikey create --role service|support|admin [--name N] | apikey list | apikey revoke --reason R KEY_ID")
		}
		fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
		role := fs.String("role", "", "service, support or admin")
		name := fs.String("name", "", "a label for the key")
		if err := fs.Parse(args[2:]); err != nil {
			return err
		}
		return withPool(ctx, url, func(pool *pgxpool.Pool) error {
			k, err := api.CreateAPIKey(ctx, pool, *role, *name, time.Now().UTC())
			if err != nil {
				return err
			}
			fmt.Printf("id:    %s\nrole:  %s\ntoken: %s\n(the token is shown once; only its hash is stored)\n", k.ID, k.Role, k.Token)
			return nil
		})
	case "rotate-keys":
		return rotateKeys(ctx, url, args[1:])
	case "delinquent", "retry", "mark-paid", "write-off":
		return runSupport(ctx, cli{getenv: os.Getenv, out: os.Stdout}, args)
	case "reconcile":
		return runReconcile(ctx, cli{getenv: os.Getenv, out: os.Stdout}, args[1:])
	case "dunning":
		return runSimulate(ctx, cli{getenv: os.Getenv, out: os.Stdout}, args[1:])
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
}

// rotateKeys re-encrypts stored billing keys under the newest key version. It reads the keys through the
// same config and ring builder as billingd, so the two cannot disagree on what the keys are.
func rotateKeys(ctx context.Context, url string, args []string) error {
	fs := flag.NewFlagSet("rotate-keys", flag.ContinueOnError)
	batch := fs.Int("batch", billingkey.DefaultRotateBatch, "rows re-encrypted per transaction")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *batch < 1 {
		return errors.New("--batch must be at least 1")
	}
	cfg, err := config.Load(nil)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ring, err := app.KeyRing(cfg, log)
	if err != nil {
		return err
	}
	return withPool(ctx, url, func(pool *pgxpool.Pool) error {
		v := billingkey.New(billingkey.Config{Pool: pool, Clock: clock.System{}, KeyRing: ring, Log: log})
		n, err := v.Rotate(ctx, *batch)
		if err != nil {
			return fmt.Errorf("rotated %d billing keys, then: %w", n, err)
		}
		fmt.Printf("rotated %d billing keys to key version %d\n", n, ring.Current())
		// Webhook endpoints' signing secrets share the key ring: rotate them too, so an old key version
		// can be retired once both are done.
		ns := notify.New(notify.Config{Pool: pool, KeyRing: ring, Log: log})
		m, err := ns.RotateSecrets(ctx, *batch)
		if err != nil {
			return fmt.Errorf("rotated %d webhook endpoint secrets, then: %w", m, err)
		}
		fmt.Printf("rotated %d webhook endpoint secrets to key version %d\n", m, ring.Current())
		return nil
	})
}

func withPool(ctx context.Context, url string, f func(*pgxpool.Pool) error) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	return f(pool)
}

// migrate applies the migrations as the schema owner and grants the service's role, after dropping and
// recreating the database (owned by the owner's role) when reset is set.
func migrate(ctx context.Context, reset bool) error {
	urls, err := config.MigrationURLs(nil)
	if err != nil {
		return err
	}
	if reset {
		if err := dbReset(ctx, urls.Migration); err != nil {
			return err
		}
	}
	separate, err := migrations.MigrateURLs(ctx, urls.Migration, urls.Service)
	if err != nil {
		return err
	}
	if !separate {
		fmt.Fprintln(os.Stderr, "billingctl: warning: the service and the migrations use one database role, so the service can rewrite its "+
			"audit log; set BILLING_MIGRATION_DATABASE_URL to the schema owner and DATABASE_URL to another role")
	}
	return nil
}

// dbReset drops and recreates the database url names, connected as url's role (which then owns it).
func dbReset(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return err
	}
	name := cfg.Database
	if name == "" || name == "postgres" || name == "template1" {
		return fmt.Errorf("refusing to reset database %q", name)
	}
	admin := strings.Replace(url, "/"+name, "/postgres", 1)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "billingctl: database %s recreated\n", name)
	return nil
}
