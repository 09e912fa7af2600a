// Command mailcatcher is the development mail server `make run` starts when BILLING_SMTP_URL is unset:
// it accepts every message billingd sends, writes each as an .eml file and lists them on a web page.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dunningworks/billing/devtools/mailcatcher"
)

func main() {
	smtpAddr := flag.String("smtp", "127.0.0.1:1025", "SMTP listen address")
	httpAddr := flag.String("http", "127.0.0.1:8025", "address of the page listing the messages")
	dir := flag.String("dir", ".data/mail", "where the .eml files go")
	flag.Parse()

	c, err := mailcatcher.Start(mailcatcher.Options{Addr: *smtpAddr, Dir: *dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailcatcher:", err)
		os.Exit(1)
	}
	srv := &http.Server{Addr: *httpAddr, Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			fmt.Fprintln(os.Stderr, "mailcatcher:", err)
			os.Exit(1)
		}
	}()
	fmt.Printf("mailcatcher: SMTP on %s, messages on http://%s and in %s\n", c.Addr, *httpAddr, *dir)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	_ = srv.Close()
	_ = c.Close()
}
