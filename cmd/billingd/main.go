// Command billingd is the billing service: the REST API and the job workers in one binary.
//
//	billingd            serve (BILLING_ROLE chooses api, worker or all)
//	billingd migrate    apply the service's and River's migrations, then exit
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

	"github.com/jackc/pgx/v5/pgxpool"

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

func migrate() error {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		return errors.New("DATABASE_URL is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrations.Up(ctx, pool); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "billingd: migrations applied")
	return nil
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
