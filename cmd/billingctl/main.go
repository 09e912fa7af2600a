// Command billingctl is the operator's tool.
//
//	billingctl migrate                         apply migrations (same as billingd migrate)
//	billingctl db-reset                        drop and recreate the database in DATABASE_URL, then migrate
//	billingctl apikey create --role R [--name N]
//
// It reads DATABASE_URL like billingd.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dunningworks/billing/api"
	"github.com/dunningworks/billing/migrations"
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
  apikey create --role R [--name N] create an API key (prints the token once)`

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Println(usage)
		return nil
	}
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		return errors.New("DATABASE_URL is required")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	switch args[0] {
	case "migrate":
		return withPool(ctx, url, func(pool *pgxpool.Pool) error { return migrations.Up(ctx, pool) })
	case "db-reset":
		return dbReset(ctx, url)
	case "apikey":
		if len(args) < 2 || args[1] != "create" {
			return errors.New("usage: billingctl apikey create --role service|support|admin [--name N]")
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
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
}

func withPool(ctx context.Context, url string, f func(*pgxpool.Pool) error) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	return f(pool)
}

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
	return withPool(ctx, url, func(pool *pgxpool.Pool) error { return migrations.Up(ctx, pool) })
}
