//go:build linux

package relay

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/internal/rawsock"
)

// Forward passes the Preamble and what the client has already sent, up to
// len(buf) bytes, to the backend right after its connect, before j is
// added to the Engine. The backend then finds the client's first bytes
// with its new connection, as it would behind haproxy, instead of a turn
// of the engine's loop later: under load that spares it a wake-up per
// connection (bench/README.md, session 10).
//
// Nothing happens while the connect is still in progress; a TCP connect
// to a loopback or nearby backend has usually completed by the time
// connect returns, and Forward then clears Connecting. The client's bytes
// are peeked, sent, and only those the backend took are read off the
// client (Sent counts them), so a backend that takes none or part of them
// leaves the rest for the engine, and nothing is lost; what is left of the
// Preamble stays in it. A send error is left for the engine to meet. A
// client that has sent nothing yet (its server speaks first) costs one
// peek.
//
// A client error read by the peek (a reset before any byte) is taken off
// the socket by it: j keeps it, and the Engine ends the relay at once as
// it would have on reading it, passing the reset on to the backend.
func (j *Job) Forward(buf []byte) {
	if j.Connecting {
		if !rawsock.Connected(j.Backend) {
			return
		}
		j.Connecting = false
	}
	if len(j.Preamble) > 0 {
		n, err := rawSend(j.Backend, j.Preamble)
		j.Preamble = j.Preamble[n:]
		if err != nil || len(j.Preamble) > 0 {
			return
		}
		j.Preamble = nil
	}
	if len(buf) == 0 {
		return
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(j.Client), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	switch {
	case e == unix.EAGAIN || e == unix.EINTR:
		return
	case e != 0:
		j.clientErr = e
		return
	case n == 0:
		return // EOF: the engine reads it again
	}
	m, err := rawSend(j.Backend, buf[:n])
	if err != nil || m == 0 {
		return
	}
	// The m bytes were peeked, so this read returns them all (a stream
	// socket nobody else reads).
	for {
		k, err := rawsock.Read(j.Client, buf[:m])
		if err == unix.EINTR {
			continue
		}
		if err == nil {
			j.Sent += int64(k)
		}
		return
	}
}
