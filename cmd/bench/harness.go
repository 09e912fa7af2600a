package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/internal/config"
	"github.com/dunningworks/billing/internal/keyring"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// serviceSettings are the knobs billingd runs with: config's defaults unless the environment sets them
// (BILLING_WORKERS, BILLING_GATEWAY_CONCURRENCY, BILLING_GATEWAY_RATE, BILLING_FETCH_COOLDOWN), so the River
// baseline and the billing day use exactly what the service uses.
type serviceSettings struct {
	Workers       int           `json:"workers"`
	FetchCooldown time.Duration `json:"-"`
	GatewayLimit  int           `json:"gateway_concurrency"`
	GatewayRate   float64       `json:"gateway_rate"`
	PoolConns     int32         `json:"pool_conns"`
	Cooldown      string        `json:"fetch_cooldown"`
}

func loadServiceSettings(dbURL string) (serviceSettings, error) {
	cfg, err := config.Load(func(k string) string {
		if k == "DATABASE_URL" {
			return dbURL
		}
		if k == "BILLING_TEST_CLOCK" {
			return ""
		}
		if k == "BILLING_MODE" {
			return "dev" // only the tuning settings are read here; the billingd processes say dev themselves
		}
		return os.Getenv(k)
	})
	if err != nil {
		return serviceSettings{}, err
	}
	s := serviceSettings{Workers: cfg.Workers, FetchCooldown: cfg.FetchCooldown, GatewayLimit: cfg.GatewayLimit,
		GatewayRate: cfg.GatewayRate, PoolConns: 40, Cooldown: cfg.FetchCooldown.String()}
	// app's rule: 40 connections unless the URL says pool_max_conns.
	if i := strings.Index(dbURL, "pool_max_conns="); i >= 0 {
		var n int32
		if _, err := fmt.Sscanf(dbURL[i+len("pool_max_conns="):], "%d", &n); err == nil && n > 0 {
			s.PoolConns = n
		}
	}
	return s, nil
}

// sim is pgsim served on loopback HTTP by this process: the gateway billingd talks to over real sockets.
type sim struct {
	*pgsim.Server
	URL string
	srv *http.Server
}

const simSecret = "test_sk_sim"

func startSim() (*sim, error) {
	s := pgsim.New(pgsim.Options{Seed: 1, SecretKey: simSecret})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return &sim{Server: s, URL: "http://" + ln.Addr().String(), srv: hs}, nil
}

func (s *sim) Close() {
	_ = s.srv.Close()
	s.Server.Close()
}

// issueKey issues a billing key with behavior "ok" (every charge succeeds) over the Toss wire API.
func (s *sim) issueKey(ctx context.Context, customerKey string) (string, error) {
	body, _ := json.Marshal(map[string]string{"authKey": "ok", "customerKey": customerKey})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/billing/authorizations/issue", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(simSecret+":")))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var out struct {
		BillingKey string `json:"billingKey"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK || out.BillingKey == "" {
		return "", fmt.Errorf("pgsim issue: status %d: %v", res.StatusCode, err)
	}
	return out.BillingKey, nil
}

// setLatency adds ms to every simulator API call (0 clears it).
func (s *sim) setLatency(ms int) {
	if ms <= 0 {
		s.ClearFaults()
		return
	}
	s.SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{Latency: &pgsim.LatencyFault{Rule: pgsim.Rule{Probability: 1}, Ms: ms}}})
}

// newRing makes a fresh key ring, and the BILLING_ENCRYPTION_KEYS value that gives billingd the same one.
func newRing() (*keyring.Ring, string, error) {
	k := make([]byte, keyring.KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, "", err
	}
	ring, err := keyring.New(map[int][]byte{1: k})
	return ring, "1:" + base64.StdEncoding.EncodeToString(k), err
}

// billingd is a billingd subprocess: its own process, so its RSS is its own. (With -inproc it is an
// app App in this process instead, for a CPU profile; then cmd is nil.)
type billingd struct {
	cmd     *exec.Cmd
	stop    func()
	URL     string
	Token   string // service role
	Started time.Time
	Ready   time.Time
	logPath string
	exited  chan struct{}
}

func buildBillingd(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "billingd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/billingd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/billingd: %w\n%s", err, out)
	}
	return bin, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startBillingd runs the binary against dbURL with the sim gateway at simURL, on the wall clock, and waits
// until /readyz answers. It runs BILLING_ROLE=all; startBillingdAs chooses the role.
func startBillingd(ctx context.Context, bin, dbURL, simURL, encKeys, logDir, name string) (*billingd, error) {
	return startBillingdAs(ctx, bin, dbURL, simURL, encKeys, logDir, name, "all")
}

func startBillingdAs(ctx context.Context, bin, dbURL, simURL, encKeys, logDir, name, role string) (*billingd, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	tok := "bench-service-" + strings.ReplaceAll(name, "_", "-") + "-token"
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DATABASE_URL", "BILLING_HTTP_ADDR", "BILLING_SIM_URL", "BILLING_SIM_SECRET", "BILLING_ENCRYPTION_KEYS",
			"BILLING_BOOTSTRAP_KEYS", "BILLING_TEST_CLOCK", "BILLING_GATEWAYS", "BILLING_ROLE", "BILLING_MODE", "BILLING_LOG_LEVEL":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "DATABASE_URL="+dbURL, "BILLING_HTTP_ADDR="+addr, "BILLING_SIM_URL="+simURL,
		"BILLING_SIM_SECRET="+simSecret, "BILLING_ENCRYPTION_KEYS="+encKeys, "BILLING_GATEWAYS=sim",
		"BILLING_BOOTSTRAP_KEYS=service:"+tok+",admin:"+tok+"-admin", "BILLING_ROLE="+role, "BILLING_MODE=dev",
		"BILLING_LOG_LEVEL=warn")
	if os.Getenv("BILLING_WEBHOOK_RATE") == "" {
		// Every webhook of a run (the simulator's, one per charge, and the timed sender's) comes from
		// loopback: the per-address limit would answer most of a billing day's 429 and the row would
		// measure refusals. The bench measures receipt; it lifts the limit unless told otherwise.
		env = append(env, "BILLING_WEBHOOK_RATE=1000000")
	}
	logPath := filepath.Join(logDir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = lf, lf
	b := &billingd{cmd: cmd, URL: "http://" + addr, Token: tok, logPath: logPath, exited: make(chan struct{})}
	b.Started = time.Now()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	go func() { _ = cmd.Wait(); lf.Close(); close(b.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(b.URL + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				b.Ready = time.Now()
				return b, nil
			}
		}
		select {
		case <-b.exited:
			return nil, fmt.Errorf("billingd exited at start:\n%s", b.logTail())
		case <-ctx.Done():
			b.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Stop()
			return nil, fmt.Errorf("billingd not ready after 60s:\n%s", b.logTail())
		}
	}
}

func (b *billingd) PID() int {
	if b.cmd == nil {
		return os.Getpid()
	}
	return b.cmd.Process.Pid
}

func (b *billingd) Alive() bool {
	select {
	case <-b.exited:
		return false
	default:
		return true
	}
}

// startInProc runs billingd's App in this process with a CPU profile going to profile: the diagnostic
// that shows where billingd's own CPU goes (pgsim's is in the same profile, under gateway/pgsim).
func startInProc(ctx context.Context, dbURL, simURL, encKeys, profile string) (*billingd, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	tok := "bench-service-inproc-token"
	env := map[string]string{"DATABASE_URL": dbURL, "BILLING_HTTP_ADDR": addr, "BILLING_SIM_URL": simURL,
		"BILLING_SIM_SECRET": simSecret, "BILLING_ENCRYPTION_KEYS": encKeys, "BILLING_GATEWAYS": "sim",
		"BILLING_BOOTSTRAP_KEYS": "service:" + tok, "BILLING_ROLE": "all", "BILLING_MODE": "dev", "BILLING_TEST_CLOCK": ""}
	cfg, err := config.Load(func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return os.Getenv(k)
	})
	if err != nil {
		return nil, err
	}
	f, err := os.Create(profile)
	if err != nil {
		return nil, err
	}
	b := &billingd{URL: "http://" + addr, Token: tok, exited: make(chan struct{}), Started: time.Now()}
	a, err := app.New(ctx, cfg, quietLogger())
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		a.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.stop = cancel
	go func() {
		_ = a.Run(runCtx)
		pprof.StopCPUProfile()
		f.Close()
		a.Close()
		close(b.exited)
	}()
	for i := 0; i < 500; i++ {
		if res, err := http.Get(b.URL + "/readyz"); err == nil {
			res.Body.Close()
			b.Ready = time.Now()
			return b, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Stop()
	return nil, fmt.Errorf("in-process billingd not ready")
}

func (b *billingd) logTail() string {
	if b.cmd == nil {
		return "(in-process: see stderr)"
	}
	out, _ := os.ReadFile(b.logPath)
	return tail(string(out), 3000)
}

// Stop asks billingd to drain (SIGTERM) and kills it if it has not exited within 30s.
func (b *billingd) Stop() {
	if !b.Alive() {
		return
	}
	if b.cmd == nil {
		b.stop()
		<-b.exited
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(30 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
}
