//go:build !(linux && amd64)

package spawn

// vforkStart is implemented for linux/amd64 only (see
// vfork_linux_amd64.go); elsewhere every spawn takes syscall.ForkExec.
func vforkStart(*Spec, []string) (*Process, bool, error) {
	return nil, false, nil
}
