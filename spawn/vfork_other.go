//go:build !(linux && amd64)

package spawn

import "syscall"

// vforkExec is implemented for linux/amd64 only (see vfork_linux_amd64.go);
// elsewhere every spawn takes syscall.ForkExec.
func vforkExec(string, []string, *syscall.ProcAttr) (int, bool, error) {
	return 0, false, nil
}
