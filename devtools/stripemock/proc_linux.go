package stripemock

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill stripe-mock when the test binary dies, so a panic or a -timeout
// abort (which skip Main's Stop) leaves no orphan holding go test's pipes open.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
