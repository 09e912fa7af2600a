package testdb

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

// Dropping a test's database takes a second or more (Postgres unlinks and syncs its files), and with
// go test's default -parallel (GOMAXPROCS, 2 on a small machine) a test that waits for its drop holds one
// of the package's two test slots while the CPU is idle. Under Main the drops run in the background
// instead, at most dropWorkers at once, and Main waits for all of them before the binary exits, so no
// database is left behind (a failed test's database is still kept for inspection, as before).

// dropWorkers bounds the drops in flight: more would only queue at the server.
const dropWorkers = 4

var (
	dropInBackground atomic.Bool
	drops            sync.WaitGroup
	dropSlots        = make(chan struct{}, dropWorkers)
	dropErrMu        sync.Mutex
	dropErrs         []string
)

// Main runs m's tests with each test's database dropped in the background, then waits for the drops; a
// package's TestMain calls it: os.Exit(testdb.Main(m)). A drop that fails fails the run.
func Main(m *testing.M) int {
	dropInBackground.Store(true)
	code := m.Run()
	dropInBackground.Store(false)
	drops.Wait()
	dropErrMu.Lock()
	defer dropErrMu.Unlock()
	for _, e := range dropErrs {
		fmt.Fprintln(os.Stderr, "testdb:", e)
	}
	if len(dropErrs) > 0 && code == 0 {
		code = 1
	}
	return code
}

// dropTB is the testing.TB pgtestdb sees. Its one Cleanup (close the instance, drop it unless the test
// failed) runs in the background under Main: by then the test has ended, so the cleanup gets the test's
// verdict as it stood at the end, and its errors are collected for Main rather than reported on the
// finished test.
type dropTB struct {
	testing.TB
	detached atomic.Bool
	failed   bool // the test's verdict when the cleanup was detached
}

func (d *dropTB) Cleanup(f func()) {
	d.TB.Cleanup(func() {
		if !dropInBackground.Load() {
			f()
			return
		}
		d.failed = d.TB.Failed()
		d.detached.Store(true)
		drops.Add(1)
		go func() {
			defer drops.Done()
			dropSlots <- struct{}{}
			defer func() { <-dropSlots }()
			f()
		}()
	})
}

func (d *dropTB) Failed() bool {
	if d.detached.Load() {
		return d.failed
	}
	return d.TB.Failed()
}

// Fatalf records a detached cleanup's error; pgtestdb returns right after each call.
func (d *dropTB) Fatalf(format string, args ...any) {
	if d.detached.Load() {
		dropErrMu.Lock()
		defer dropErrMu.Unlock()
		dropErrs = append(dropErrs, d.TB.Name()+": "+fmt.Sprintf(format, args...))
		return
	}
	d.TB.Helper()
	d.TB.Fatalf(format, args...)
}

func (d *dropTB) Logf(format string, args ...any) {
	if d.detached.Load() {
		return
	}
	d.TB.Helper()
	d.TB.Logf(format, args...)
}

func (d *dropTB) Helper() {
	if !d.detached.Load() {
		d.TB.Helper()
	}
}
