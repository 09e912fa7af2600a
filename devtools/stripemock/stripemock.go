package stripemock

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the stripe-mock release the harness installs when the binary is missing. Its bundled spec
// must be close to the API version stripe-go v82 speaks.
const Version = "v0.203.0"

const module = "github.com/stripe/stripe-mock"

// Fixture values the patched fixtures carry, so tests can assert the adapter read them.
const (
	// FixtureOrderID is the metadata order_id of every PaymentIntent and Charge stripe-mock returns.
	FixtureOrderID = "ord_stripemock"
	// FixturePaymentIntentID is the id of PaymentIntents stripe-mock returns from search and list calls.
	FixturePaymentIntentID = "pi_1PgafyB7WZ01zgkWSjxsAJo3"
	// FixtureChargeID is the id of charges stripe-mock returns from list calls.
	FixtureChargeID = "ch_1PgafuB7WZ01zgkWXYmPNZs8"
	// FixtureAmount is the amount, in minor units of FixtureCurrency, of the fixture PaymentIntent.
	FixtureAmount = 1099
	// FixtureCurrency is the currency of the fixture PaymentIntent and Charge.
	FixtureCurrency = "usd"
)

var shared struct {
	once    sync.Once
	mu      sync.Mutex
	cmd     *exec.Cmd
	tempDir string
	baseURL string
	err     error
}

// Start returns the base URL (http://127.0.0.1:port) of the stripe-mock shared by this test binary,
// starting it on first use. The test fails if stripe-mock cannot be found, installed or started.
func Start(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		shared.baseURL, shared.err = start()
	})
	if shared.err != nil {
		t.Fatalf("stripemock: %v", shared.err)
	}
	return shared.baseURL
}

// Main runs the tests and then stops stripe-mock; use it as the body of TestMain:
//
//	func TestMain(m *testing.M) { stripemock.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop kills the shared stripe-mock process, if one was started, and removes its fixtures.
func Stop() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cmd != nil && shared.cmd.Process != nil {
		_ = shared.cmd.Process.Kill()
		_ = shared.cmd.Wait()
		shared.cmd = nil
	}
	if shared.tempDir != "" {
		_ = os.RemoveAll(shared.tempDir)
		shared.tempDir = ""
	}
}

func start() (string, error) {
	bin, err := binary()
	if err != nil {
		return "", err
	}
	srcDir, err := moduleDir()
	if err != nil {
		return "", err
	}
	tempDir, err := os.MkdirTemp("", "stripemock-")
	if err != nil {
		return "", err
	}
	fixtures := filepath.Join(tempDir, "fixtures.json")
	if err := writePatchedFixtures(filepath.Join(srcDir, "embedded", "openapi", "fixtures3.json"), fixtures); err != nil {
		_ = os.RemoveAll(tempDir)
		return "", err
	}

	// Port 0 on loopback lets the kernel pick a free port, so parallel test binaries never collide. The
	// HTTPS listener is pinned to loopback too: left alone it would bind the fixed port 12112 everywhere.
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0", "-fixtures", fixtures)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		_ = os.RemoveAll(tempDir)
		return "", err
	}
	// stderr stays unset (/dev/null): handing it the test binary's stderr would let a leftover process
	// keep go test waiting on the pipe.
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(tempDir)
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	shared.mu.Lock()
	shared.cmd, shared.tempDir = cmd, tempDir
	shared.mu.Unlock()

	addr, err := listenAddress(stdout, 30*time.Second)
	if err != nil {
		Stop()
		return "", err
	}
	baseURL := "http://" + addr
	if err := waitReady(baseURL, 10*time.Second); err != nil {
		Stop()
		return "", err
	}
	return baseURL, nil
}

// listenAddress reads stripe-mock's stdout until it reports the HTTP address it bound, then keeps
// draining stdout so the process never blocks on a full pipe.
func listenAddress(stdout io.Reader, timeout time.Duration) (string, error) {
	const prefix = "Listening for HTTP at address: "
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if line := sc.Text(); !sent && strings.HasPrefix(line, prefix) {
				found <- strings.TrimSpace(strings.TrimPrefix(line, prefix))
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case addr, ok := <-found:
		if !ok {
			return "", errors.New("stripe-mock exited before listening")
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", fmt.Errorf("stripe-mock reported address %q: %w", addr, err)
		}
		return addr, nil
	case <-time.After(timeout):
		return "", errors.New("stripe-mock did not report its address in time")
	}
}

func waitReady(baseURL string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequest(http.MethodGet, baseURL+"/v1/customers?limit=1", nil)
		req.SetBasicAuth("sk_test_stripemock", "")
		res, err := client.Do(req)
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stripe-mock at %s not ready: %v", baseURL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// binary finds stripe-mock in GOBIN, GOPATH/bin or PATH, installing it with `go install` when absent.
func binary() (string, error) {
	var candidates []string
	if gobin := goEnv("GOBIN"); gobin != "" {
		candidates = append(candidates, filepath.Join(gobin, "stripe-mock"))
	}
	for _, gopath := range filepath.SplitList(goEnv("GOPATH")) {
		candidates = append(candidates, filepath.Join(gopath, "bin", "stripe-mock"))
	}
	find := func() string {
		for _, c := range candidates {
			if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
				return c
			}
		}
		if p, err := exec.LookPath("stripe-mock"); err == nil {
			return p
		}
		return ""
	}
	if p := find(); p != "" {
		return p, nil
	}
	out, err := goCmd(5*time.Minute, "install", module+"@"+Version)
	if err != nil {
		return "", fmt.Errorf("go install %s@%s: %w: %s", module, Version, err, out)
	}
	if p := find(); p != "" {
		return p, nil
	}
	return "", errors.New("stripe-mock installed but not found in GOBIN, GOPATH/bin or PATH")
}

// moduleDir returns stripe-mock's source in the module cache, where its bundled fixtures live.
func moduleDir() (string, error) {
	out, err := goCmd(5*time.Minute, "mod", "download", "-json", module+"@"+Version)
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w: %s", module, Version, err, out)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("go mod download output: %w", err)
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", module, Version, info.Error)
	}
	return info.Dir, nil
}

func goEnv(key string) string {
	out, err := goCmd(time.Minute, "env", key)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// goCmd runs the go tool outside any module, so installing or downloading stripe-mock never touches the
// project's go.mod.
func goCmd(timeout time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GO111MODULE=on", "GOFLAGS=")
	return cmd.Output()
}

// writePatchedFixtures copies stripe-mock's bundled fixtures with the PaymentIntent turned into a
// succeeded off-session charge for FixtureOrderID. The bundled one is "requires_payment_method" with an
// idempotency_error, which no real confirm=true create answers with 200.
func writePatchedFixtures(src, dst string) error {
	raw, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read stripe-mock fixtures: %w", err)
	}
	var doc struct {
		Resources map[string]map[string]any `json:"resources"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("decode stripe-mock fixtures: %w", err)
	}
	pi, ch := doc.Resources["payment_intent"], doc.Resources["charge"]
	if pi == nil || ch == nil {
		return errors.New("stripe-mock fixtures lack payment_intent or charge")
	}
	meta := map[string]any{"order_id": FixtureOrderID}
	pi["id"] = FixturePaymentIntentID
	pi["status"] = "succeeded"
	pi["last_payment_error"] = nil
	pi["next_action"] = nil
	pi["canceled_at"] = nil
	pi["amount"] = FixtureAmount
	pi["amount_received"] = FixtureAmount
	pi["currency"] = FixtureCurrency
	pi["metadata"] = meta
	pi["latest_charge"] = FixtureChargeID
	ch["id"] = FixtureChargeID
	ch["status"] = "succeeded"
	ch["amount"] = FixtureAmount
	ch["amount_captured"] = FixtureAmount
	ch["currency"] = FixtureCurrency
	ch["metadata"] = meta
	ch["payment_intent"] = FixturePaymentIntentID
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, out, 0o600)
}
