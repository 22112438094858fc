//go:build linux

package relay

import (
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const spliceFlags = unix.SPLICE_F_NONBLOCK | unix.SPLICE_F_MOVE

// splice moves src -> pipe -> dst with splice(2) until EOF or an error.
// handled is false when splicing is not possible (the socket type does not
// support it, or no pipe can be had); nothing was lost then and the caller
// continues with a generic copy.
//
// The pipe is taken only once src is readable and returned as soon as src
// is drained, so an idle direction holds no pipe, only a goroutine parked
// in the netpoller. The readiness probe is the splice itself, run inside
// RawConn.Read's callback: returning false there parks until the next
// readiness edge, and doing the syscall first (not returning false
// blindly) means no edge that arrived before the wait is lost.
func (h *half) splice(src, dst syscall.RawConn) (rerr, werr error, handled bool) {
	var p *pipe
	inPipe := 0 // bytes in p
	defer func() {
		switch {
		case p == nil:
		case inPipe == 0:
			h.r.pipes.put(p)
		default:
			p.close() // holds bytes that will never be delivered
		}
	}()
	// The callbacks are made once, not per iteration, so the loop does
	// not allocate.
	var (
		got      int
		serr     error
		derr     error
		fallback bool
	)
	fill := func(fd uintptr) bool {
		if p == nil {
			var err error
			if p, err = h.r.pipes.get(); err != nil {
				fallback = true // e.g. EMFILE: copy without a pipe
				return true
			}
		}
		for {
			n, e := rawSplice(int(fd), p.w, p.size)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				// Drained: give the (empty) pipe back while waiting.
				h.r.pipes.put(p)
				p = nil
				return false
			case unix.EINVAL:
				fallback = true // socket type cannot splice
				return true
			}
			got, serr = int(n), e
			return true
		}
	}
	drain := func(fd uintptr) bool {
		for inPipe > 0 {
			n, e := rawSplice(p.r, int(fd), inPipe)
			switch {
			case e == unix.EINTR:
				continue
			case e == unix.EAGAIN:
				return false // dst full: wait until writable
			case e != nil:
				derr = os.NewSyscallError("splice", e)
				return true
			case n == 0:
				derr = io.ErrShortWrite // cannot happen; never spin
				return true
			}
			inPipe -= int(n)
			h.n += n
		}
		return true
	}
	for {
		err := src.Read(fill)
		switch {
		case err != nil:
			return err, nil, true
		case fallback:
			return nil, nil, false
		case serr != nil:
			return os.NewSyscallError("splice", serr), nil, true
		case got == 0:
			return nil, nil, true // EOF
		}
		inPipe = got
		h.s.touch()

		err = dst.Write(drain)
		h.s.touch()
		if err != nil {
			return nil, err, true
		}
		if derr != nil {
			return nil, derr, true
		}
	}
}

// rawSplice is splice(2) without the runtime's system call bookkeeping.
// The descriptors are non-blocking, so it never sleeps; but moving a
// 256 KiB chunk takes longer than the runtime's 20 µs sysmon tick, and
// through the syscall package (entersyscall) every such call let sysmon
// take the P away and hand it to another thread (a futex wake-up and a
// scheduler round trip per chunk, sysmon itself polling every 20 µs).
// strace -f -c of one 2 s TCP->UNIX upload: nanosleep 5030 -> 335, futex
// 499 -> 229.
func rawSplice(in, out, n int) (int64, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), spliceFlags)
	if e != 0 {
		return 0, e
	}
	return int64(r), nil
}
