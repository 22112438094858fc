//go:build linux

package relay

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

const (
	// pipeSize is asked of F_SETPIPE_SZ. 256 KiB, as
	// systemd-socket-proxyd uses: a larger pipe (1 MiB, Go's own splice
	// size) overruns a UNIX socket's send buffer, so each chunk stalls
	// half-way on EAGAIN and one TCP->UNIX stream moved about 0.6x of
	// socket-proxyd's (bench/relay.sh); at 256 KiB it is on par or ahead,
	// and TCP->TCP is unchanged. Only relays that are moving data hold a
	// pipe, so its kernel cost is per active direction, not per
	// connection.
	pipeSize = 256 << 10

	// maxIdlePipes bounds the pool; pipes returned beyond it are closed.
	// It covers the directions that are busy at the same moment in a
	// heavily loaded server without keeping much kernel memory around.
	maxIdlePipes = 64
)

// pipe is one splice pipe: raw non-blocking fds, not in the netpoller
// (splice is called with SPLICE_F_NONBLOCK and the sockets do the
// waiting).
type pipe struct {
	r, w int
	size int // capacity in bytes
}

func (p *pipe) close() {
	_ = unix.Close(p.r) // nothing useful to do on error: the fd is gone
	_ = unix.Close(p.w)
}

// pipePool is a bounded LIFO of empty pipes.
type pipePool struct {
	mu     sync.Mutex
	free   []*pipe
	closed bool
}

// get returns an empty pipe, creating one when the pool is empty.
func (pp *pipePool) get() (*pipe, error) {
	pp.mu.Lock()
	if n := len(pp.free); n > 0 {
		p := pp.free[n-1]
		pp.free[n-1] = nil
		pp.free = pp.free[:n-1]
		pp.mu.Unlock()
		return p, nil
	}
	pp.mu.Unlock()
	return newPipe()
}

// put returns an empty pipe to the pool (or closes it when the pool is
// full or closed). A pipe that may still hold data must be closed by the
// caller instead.
func (pp *pipePool) put(p *pipe) {
	pp.mu.Lock()
	if !pp.closed && len(pp.free) < maxIdlePipes {
		pp.free = append(pp.free, p)
		pp.mu.Unlock()
		return
	}
	pp.mu.Unlock()
	p.close()
}

// idle reports how many pipes the pool holds.
func (pp *pipePool) idle() int {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return len(pp.free)
}

func (pp *pipePool) close() {
	pp.mu.Lock()
	free := pp.free
	pp.free, pp.closed = nil, true
	pp.mu.Unlock()
	for _, p := range free {
		p.close()
	}
}

func newPipe() (*pipe, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, fmt.Errorf("create splice pipe: %w", err)
	}
	p := &pipe{r: fds[0], w: fds[1]}
	// F_SETPIPE_SZ can fail (EPERM over the user's pipe quota); the pipe
	// then keeps its default size, which still works.
	size, err := unix.FcntlInt(uintptr(p.w), unix.F_SETPIPE_SZ, pipeSize)
	if err != nil {
		size, err = unix.FcntlInt(uintptr(p.w), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("size splice pipe: %w", err)
		}
	}
	p.size = size
	return p, nil
}
