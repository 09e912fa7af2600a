package chaos

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// proc is one child process (a billingd replica or pgsim) that can be killed and restarted.
type proc struct {
	name string
	bin  string
	args []string
	env  []string
	addr string
	log  string
	// ready is the path that answers 200 once the process serves (default /readyz).
	ready string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has exited
	alive  bool
	kills  int
}

func (p *proc) start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.alive {
		return nil
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so a kill takes nothing else with it and nothing outlives the run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(exited) }()
	p.cmd, p.exited, p.alive = cmd, exited, true
	ready := p.ready
	if ready == "" {
		ready = "/readyz"
	}
	return waitReady(ctx, p.addr+ready, p.name)
}

// kill sends SIGKILL: no drain, no deferred cleanup, exactly like a crashed machine.
func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.alive {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	p.alive = false
	p.kills++
}

// stop asks for a graceful shutdown.
func (p *proc) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.alive {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
	p.alive = false
}

func (p *proc) isAlive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.alive
}

func waitReady(ctx context.Context, urlNoScheme, name string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		res, err := http.Get("http://" + urlNoScheme)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not become ready at %s", name, urlNoScheme)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// buildBinaries compiles billingd and pgsim (with extra build tags for deliberately broken builds).
func buildBinaries(ctx context.Context, dir, tags string) error {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, "./cmd/billingd", "./cmd/pgsim")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = moduleRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// moduleRoot finds the directory holding go.mod, from the working directory up.
func moduleRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}
