package billing_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/internal/config"
	"github.com/dunningworks/billing/internal/keyring"
)

// The crash tests of a refund kill a real billingd process with SIGKILL: this test binary, run again as
// a child (TestMain), serves the real App on the test's database and gateway. Nothing of the child runs
// after the kill — no deferred cleanup, no graceful shutdown, no answer stored under the Idempotency-Key —
// and a fresh replica takes over the same database, River queue and gateway.
const (
	killChildEnv = "BILLING_TEST_KILL_CHILD" // set: this process is the child; its value is where it dies
	killChildTag = "child listening on "
)

// refundKillPoints are the four places a refund can die with money at stake. The first two are killed by
// the test as the gateway receives the cancel (before it books it; after it booked it, before the answer
// leaves); the last two by the child itself, through its hooks.
var refundKillPoints = []string{
	"recorded", // committed (credit note pending, refund row, lookup job); the cancel never reached the gateway
	"sent",     // the gateway booked the cancel; its answer never came back
	"answered", // the child read the gateway's answer and died before recording it
	"applied",  // the answer is committed (credit note issued, ledger); the client never got its 201
}

// runKillChild is the child: the App on the environment's configuration, dying at BILLING_TEST_KILL_CHILD.
func runKillChild(at string) int {
	die := func(string) error {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way; nothing after this point runs
	}
	var hooks billing.Hooks
	switch at {
	case "answered":
		hooks.AfterRefund = die
	case "applied":
		hooks.AfterRefundRecord = die
	}
	cfg, err := config.Load(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	a, err := app.New(ctx, cfg, log, app.Options{Hooks: hooks})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	fmt.Println(killChildTag + ln.Addr().String())
	if err := a.Serve(ctx, ln); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	return 0
}

// child is a billingd process the test can SIGKILL.
type child struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
	log    *bytes.Buffer
	killed atomic.Bool
}

// startChild runs this test binary as a billingd on dbURL and simURL that dies at the kill point at.
func startChild(t *testing.T, dbURL, simURL, at string) *child {
	t.Helper()
	sep := "?"
	if strings.Contains(dbURL, "?") {
		sep = "&"
	}
	vars := map[string]string{
		killChildEnv:               at,
		"DATABASE_URL":             dbURL + sep + "pool_max_conns=8",
		"BILLING_MODE":             "dev",
		"BILLING_BOOTSTRAP_KEYS":   "admin:" + testenv.AdminToken + ",service:" + testenv.ServiceToken + ",support:" + testenv.SupportToken,
		"BILLING_TEST_CLOCK":       "1",
		"BILLING_TEST_CLOCK_START": testenv.ClockStart().Format(time.RFC3339),
		"BILLING_BREAKER_COOLDOWN": "50ms",
		"BILLING_ENCRYPTION_KEYS":  "1:" + keyring.TestKey,
		"BILLING_LOG_LEVEL":        "warn",
		"BILLING_SIM_URL":          simURL,
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = os.Environ()
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c := &child{cmd: cmd, exited: make(chan struct{}), log: &bytes.Buffer{}}
	cmd.Stderr = &lockedWriter{w: c.log}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), killChildTag); ok {
				addr <- a
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("child log:\n%s", c.log.String())
		}
	})
	select {
	case a := <-addr:
		c.url = "http://" + a
	case <-c.exited:
		t.Fatalf("the child exited before it served:\n%s", c.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the child did not start:\n%s", c.log.String())
	}
	return c
}

// kill SIGKILLs the child and waits until it is gone.
func (c *child) kill() {
	c.killed.Store(true)
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.exited
}

// diedOfSIGKILL reports whether the child ended by SIGKILL (its own or the test's).
func (c *child) diedOfSIGKILL(t *testing.T) bool {
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the child is still alive")
	}
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// gatewayKillSwitch is pgsim as the child sees it: when armed, the first cancel kills the child before the
// gateway books it ("recorded") or after it booked it and before the answer leaves ("sent").
type gatewayKillSwitch struct {
	sim   *pgsim.Server
	at    string
	armed atomic.Bool
	child atomic.Pointer[child]
}

func (g *gatewayKillSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := g.child.Load()
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/cancel") || c == nil || !g.armed.CompareAndSwap(true, false) {
		g.sim.ServeHTTP(w, r)
		return
	}
	switch g.at {
	case "recorded":
		c.kill()
		http.Error(w, "the caller is gone", http.StatusServiceUnavailable)
	case "sent":
		rec := httptest.NewRecorder()
		g.sim.ServeHTTP(rec, r)
		c.kill()
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	default:
		g.sim.ServeHTTP(w, r)
	}
}

// postRaw sends a POST that may never be answered (the server dies under it).
func postRaw(url, token, key string, body map[string]any) (int, error) {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", url, bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", key)
	res, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

// A SIGKILL at each point of a refund — recorded, sent, answered, applied — gives exactly one refund at the
// gateway and one credit note. The refund never stays stuck: either the client retries with the same
// Idempotency-Key (the retry answers with the one credit note, its refund settled by a lookup then and
// there: no 409 interrupted, no second cancel), or nobody asks and the refund's lookup job, committed with
// it, settles it on the next replica.
func TestRefundKilledAtEachPointRefundsExactlyOnce(t *testing.T) {
	t.Parallel()
	for _, at := range refundKillPoints {
		for _, resume := range []string{"client retries with the same key", "the lookup job settles it"} {
			t.Run(at+"/"+resume, func(t *testing.T) {
				t.Parallel()
				sim := pgsim.New(pgsim.Options{Seed: 1, SecretKey: "test_sk_sim"})
				gw := &gatewayKillSwitch{sim: sim, at: at}
				simURL := serve(t, gw)
				setup := testenv.New(t, testenv.Options{SimURL: simURL})
				plan := setup.CreatePlan("9900", "KRW", "month", 1)
				cus, _, inv, order := paidInvoice(t, setup, plan)
				setup.Stop()

				c := startChild(t, setup.DBURL, simURL, at)
				gw.child.Store(c)
				gw.armed.Store(true)
				body := map[string]any{"amount": "3000", "reason": "killed mid-refund"}
				key := "refund-kill-" + at
				status, err := postRaw(c.url+"/v1/invoices/"+inv+"/refunds", testenv.ServiceToken, key, body)
				require.Error(t, err, "the child died before it answered (got %d)", status)
				require.True(t, c.diedOfSIGKILL(t), "the child was SIGKILLed at %s", at)

				next := testenv.New(t, testenv.Options{DBURL: setup.DBURL, SimURL: simURL})
				require.Equal(t, 1, next.QueryInt(`SELECT count(*) FROM credit_notes WHERE invoice_id = $1`, inv), "the first run committed its credit note")
				// The dead owner's lock on the key lapses 30 s of wall time later (its heartbeat stopped);
				// that is all this skips.
				require.Equal(t, 1, next.QueryInt(`WITH u AS (UPDATE idempotency_keys SET locked_until = now() - interval '1 second'
					WHERE key = $1 AND status = 'in_progress' RETURNING 1) SELECT count(*) FROM u`, key))

				if resume == "the lookup job settles it" {
					next.Advance("2m") // the refund's first lookup (1 min), committed with it
					require.Equal(t, 1, next.QueryInt(`SELECT count(*) FROM refunds WHERE invoice_id = $1 AND status = 'succeeded'`, inv),
						"the lookup job settled the refund with nobody asking")
				} else {
					// Another body under the key is not a new refund.
					res := next.Do("POST", "/v1/invoices/"+inv+"/refunds", testenv.ServiceToken, map[string]any{"amount": "5000", "reason": "x"}, "Idempotency-Key: "+key)
					require.Equal(t, 422, res.Status, string(res.Body))
					require.Equal(t, "idempotency_key_reused", res.JSON(t)["code"])
				}
				res := next.Do("POST", "/v1/invoices/"+inv+"/refunds", testenv.ServiceToken, body, "Idempotency-Key: "+key)
				require.Equal(t, 201, res.Status, string(res.Body))
				require.Empty(t, res.Header.Get("Idempotent-Replayed"), "the handler ran again and found the credit note")
				cn := res.JSON(t)
				require.Equal(t, "issued", cn["status"], "%v", cn)
				require.Equal(t, "3000", cn["amount"])
				require.Equal(t, "succeeded", cn["refund"].(map[string]any)["status"])
				again := next.Do("POST", "/v1/invoices/"+inv+"/refunds", testenv.ServiceToken, body, "Idempotency-Key: "+key)
				require.Equal(t, 201, again.Status)
				require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
				require.Equal(t, cn["id"], again.JSON(t)["id"])
				next.Advance("24h") // every lookup that was scheduled comes due and finds nothing to do

				charge, ok := sim.Charge(order)
				require.True(t, ok)
				require.Len(t, charge.Cancels, 1, "exactly one refund at the gateway")
				require.Equal(t, "3000", charge.Cancels[0].Amount.String())
				require.Equal(t, "PARTIAL_CANCELED", charge.Status)
				require.Equal(t, "6900", charge.BalanceAmount.String())
				require.Equal(t, 1, next.QueryInt(`SELECT count(*) FROM credit_notes WHERE invoice_id = $1`, inv), "exactly one credit note")
				require.Equal(t, 1, next.QueryInt(`SELECT count(*) FROM credit_notes WHERE invoice_id = $1 AND status = 'issued' AND amount = 3000`, inv))
				require.Equal(t, 1, next.QueryInt(`SELECT count(*) FROM refunds WHERE invoice_id = $1 AND status = 'succeeded'`, inv))
				require.Equal(t, 0, next.QueryInt(`SELECT count(*) FROM refunds WHERE status <> 'succeeded'`))
				got := getInv(t, next, inv)
				require.Equal(t, "paid", got["status"])
				require.Equal(t, "3000", got["amount_refunded"])
				att := got["attempts"].([]any)[0].(map[string]any)
				require.Equal(t, "succeeded", att["status"], "a partial refund leaves the payment succeeded")
				require.Equal(t, 1, next.QueryInt(`SELECT count(*) FROM ledger_transactions WHERE kind = 'refund'`))
				require.Equal(t, "3000", accountBalance(t, next, "refunds", "KRW"))
				require.Equal(t, "0", accountBalance(t, next, "receivable:"+cus, "KRW"))
				require.Equal(t, 1, next.QueryInt(`SELECT count(*) FROM events WHERE type = 'refund.succeeded' AND invoice_id = $1`, inv))
				require.Equal(t, 1, next.QueryInt(`SELECT count(*) FROM audit_log WHERE action = 'refund' AND target_id = $1`, inv))
				next.RequireBalanced()
			})
		}
	}
}
