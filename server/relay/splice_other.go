//go:build !linux

package relay

import "syscall"

// pipePool is empty where splice(2) does not exist.
type pipePool struct{}

func (pp *pipePool) close()    {}
func (pp *pipePool) idle() int { return 0 }

// splice is not available: the caller uses the generic copy.
func (h *half) splice(src, dst syscall.RawConn) (rerr, werr error, handled bool) {
	return nil, nil, false
}
