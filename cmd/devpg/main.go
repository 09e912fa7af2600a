// Command devpg prints the URL of a Postgres server for development and tests, starting a private cluster
// under .data/ when none answers. The Makefile calls it when DATABASE_URL is not set.
//
//	devpg            ensure a server and print its URL (database "billing")
//	devpg -db NAME   the same for another database
//	devpg stop       stop the private cluster
//	devpg roles      set the development database's owner and service roles up (DATABASE_URL: a URL that may
//	                 create roles, on that database) and print the shell exports of their two URLs;
//	                 nothing when BILLING_MIGRATION_DATABASE_URL is already set (the roles are yours then)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dunningworks/billing/devtools/devpg"
)

func main() {
	db := flag.String("db", "billing", "database to create and print the URL of")
	dataDir := flag.String("data", ".data/pg", "private cluster directory")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	opts := devpg.Options{DataDir: *dataDir, Database: *db}
	if flag.Arg(0) == "roles" {
		if os.Getenv("BILLING_MIGRATION_DATABASE_URL") != "" {
			return
		}
		admin := os.Getenv("DATABASE_URL")
		if admin == "" {
			fmt.Fprintln(os.Stderr, "devpg roles: DATABASE_URL is required")
			os.Exit(1)
		}
		urls, err := devpg.Roles(ctx, admin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "devpg roles:", err, "(or set BILLING_MIGRATION_DATABASE_URL to the schema owner and DATABASE_URL to the service role yourself)")
			os.Exit(1)
		}
		fmt.Printf("export BILLING_MIGRATION_DATABASE_URL=%s\nexport DATABASE_URL=%s\n", shellQuote(urls.Owner), shellQuote(urls.Service))
		return
	}
	if flag.Arg(0) == "stop" {
		if err := devpg.StopPrivate(ctx, opts); err != nil {
			fmt.Fprintln(os.Stderr, "devpg:", err)
			os.Exit(1)
		}
		return
	}
	url, err := devpg.Ensure(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devpg:", err)
		os.Exit(1)
	}
	fmt.Println(url)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
