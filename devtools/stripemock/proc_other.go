//go:build !linux

package stripemock

import "os/exec"

// dieWithParent has no portable equivalent outside Linux; Main's Stop is the only cleanup there.
func dieWithParent(*exec.Cmd) {}
