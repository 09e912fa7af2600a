// Command billingd is the billing service: the REST API and the job workers in one binary.
//
//	billingd            serve (BILLING_ROLE chooses api, worker or all)
//	billingd migrate    apply the service's and River's migrations as the schema owner
//	                    (BILLING_MIGRATION_DATABASE_URL, else DATABASE_URL), grant DATABASE_URL's role, exit
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/dunning"
	"github.com/dunningworks/billing/internal/config"
	"github.com/dunningworks/billing/migrations"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "billingd:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve":
		return serve()
	case "migrate":
		return migrate()
	case "-h", "--help", "help":
		fmt.Println("usage: billingd [serve|migrate]   (configuration from the environment; see README.md)")
		return nil
	default:
		return fmt.Errorf("unknown command %q (want serve or migrate)", cmd)
	}
}

func serve() error {
	cfg, err := config.Load(nil)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel)
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	a, err := app.New(ctx, cfg, log)
	if errors.Is(err, migrations.ErrNotMigrated) || errors.Is(err, dunning.ErrInvalidPolicy) {
		return fmt.Errorf("refusing to start: %w", err)
	}
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Run(ctx)
}

// migrate runs the migrations as the schema owner (BILLING_MIGRATION_DATABASE_URL, else DATABASE_URL) and
// grants DATABASE_URL's role what the service needs, and no more.
func migrate() error {
	urls, err := config.MigrationURLs(nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	separate, err := migrations.MigrateURLs(ctx, urls.Migration, urls.Service)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "billingd: migrations applied")
	if !separate {
		fmt.Fprintln(os.Stderr, "billingd: warning: the service and the migrations use one database role, so the service can "+
			"rewrite its audit log; set BILLING_MIGRATION_DATABASE_URL to the schema owner and DATABASE_URL to another role (README, \"Database roles\")")
	}
	return nil
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
