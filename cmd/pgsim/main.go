package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dunningworks/billing/gateway/pgsim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pgsim:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("pgsim", flag.ContinueOnError)
	defAddr := "127.0.0.1:8091"
	if v := os.Getenv("PGSIM_ADDR"); v != "" {
		defAddr = v
	}
	addr := fs.String("addr", defAddr, "listen address (env PGSIM_ADDR)")
	seed := fs.Int64("seed", 1, "seed for fault draws and generated keys")
	secret := fs.String("secret", "test_sk_sim", "secret key accepted in Basic auth")
	webhookURL := fs.String("webhook-url", "", "where to POST PAYMENT_STATUS_CHANGED webhooks (empty: none)")
	verbose := fs.Bool("v", false, "log every API request (debug level)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level}))

	sim := pgsim.New(pgsim.Options{Seed: *seed, SecretKey: *secret, WebhookURL: *webhookURL, Logger: log})
	defer sim.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("pgsim listening", "addr", ln.Addr().String(), "seed", *seed, "webhook_url", *webhookURL)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("pgsim shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
