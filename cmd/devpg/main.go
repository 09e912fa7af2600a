// Command devpg prints the URL of a Postgres server for development and tests, starting a private cluster
// under .data/ when none answers. The Makefile calls it when DATABASE_URL is not set.
//
//	devpg            ensure a server and print its URL (database "billing")
//	devpg -db NAME   the same for another database
//	devpg stop       stop the private cluster
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
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
