package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrIdleTimeout is Result.Err when Options.IdleTimeout ended the relay.
var ErrIdleTimeout = errors.New("relay idle timeout")

// Options tune one relayed connection. The zero value is ready to use.
type Options struct {
	// IdleTimeout, when > 0, ends the relay when neither direction has
	// moved a byte for this long. Zero means no limit.
	IdleTimeout time.Duration
}

// Result is what one relayed connection did.
type Result struct {
	In  int64 // bytes delivered client -> backend
	Out int64 // bytes delivered backend -> client
	// Err is the first real error: nil when both directions ended with a
	// clean EOF. A reset is reported as such (errors.Is(Err,
	// syscall.ECONNRESET)); ErrIdleTimeout when the idle timeout fired;
	// ctx.Err() when the context ended the relay. Errors caused by the
	// relay closing the connections itself are not reported.
	Err error
	// ConnectFailed is set by the Engine when the backend's connect
	// failed (Err says why): nothing was relayed, the backend socket is
	// closed and the client socket is the caller's again.
	ConnectFailed bool
}

// Relayer relays connections. It owns the pool of splice pipes shared by
// all relays it runs, so one Relayer should serve a whole process (or
// server); creating one per connection defeats the pool. The zero value
// is not usable: call New. A Relayer is safe for concurrent use.
type Relayer struct {
	pipes pipePool
	bufs  sync.Pool // *[]byte for the generic (non-splice) copy
}

// New returns a Relayer with an empty pipe pool.
func New() *Relayer {
	r := &Relayer{}
	r.bufs.New = func() any {
		b := make([]byte, genericBufSize)
		return &b
	}
	return r
}

// Close closes the pooled idle pipes. Relays still running keep working;
// pipes they return afterwards are closed instead of pooled. Close is
// idempotent and always returns nil.
func (r *Relayer) Close() error {
	r.pipes.close()
	return nil
}

// genericBufSize is the buffer of the generic copy used for conns that
// cannot splice.
const genericBufSize = 32 << 10

// Relay copies client<->backend until both directions have ended and
// returns what moved.
//
// When one side shuts down its write half (EOF), Relay shuts down the
// write half of the other side (CloseWrite), so the peer sees EOF and can
// still answer; the relay ends when both directions have ended. A reset
// read from one side aborts the relay and resets the other side (TCP:
// SO_LINGER 0), so a broken stream is never passed on as a clean end. A
// failed write ends that direction; the other one drains what the failed
// peer sent before it went away.
//
// Relay clears deadlines set on the conns and closes both conns before it
// returns. It returns promptly when ctx is done or the idle timeout fires,
// closing both conns (a plain close, not a reset).
//
// *net.TCPConn and *net.UnixConn (any mix) are relayed with splice(2)
// through pooled pipes; other net.Conn types with a generic copy. Their
// sockets must be in non-blocking mode, as every conn the net package
// makes is (accept, dial, FileConn): splice runs as a raw system call
// that must never sleep. Calling Fd on an *os.File dup of a conn puts the
// shared socket in blocking mode; such a conn must not be relayed.
func (r *Relayer) Relay(ctx context.Context, client, backend net.Conn, opt Options) Result {
	s := &session{client: client, backend: backend, start: time.Now()}
	// Deadlines the caller used before the relay (say, to read a PROXY
	// header) would otherwise end it as an error; ctx and IdleTimeout are
	// the relay's limits.
	_ = client.SetDeadline(time.Time{})
	_ = backend.SetDeadline(time.Time{})
	if err := ctx.Err(); err != nil {
		s.closeBoth()
		return Result{Err: err}
	}
	stop := context.AfterFunc(ctx, func() { s.abort(ctx.Err(), nil) })
	if opt.IdleTimeout > 0 {
		s.idle = opt.IdleTimeout
		s.timer = time.AfterFunc(opt.IdleTimeout, s.checkIdle)
	}

	in, out := r.newHalf(s, client, backend), r.newHalf(s, backend, client)
	var wg sync.WaitGroup
	wg.Go(func() { copyHalf(out) })
	copyHalf(in)
	wg.Wait()

	stop()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Lock()
	s.finished = true
	err := s.err
	s.mu.Unlock()
	s.closeBoth()
	return Result{In: in.n, Out: out.n, Err: err}
}

// session is the state both directions of one relayed connection share.
type session struct {
	client, backend net.Conn
	start           time.Time
	last            atomic.Int64 // time.Since(start) of the last byte moved
	idle            time.Duration
	timer           *time.Timer

	mu       sync.Mutex
	err      error // first real error
	aborted  bool  // abort closed the conns: later net.ErrClosed is ours
	finished bool  // Relay is returning: ignore late aborts
}

// touch records that bytes moved now, for the idle timeout.
func (s *session) touch() {
	if s.timer != nil {
		s.last.Store(int64(time.Since(s.start)))
	}
}

// checkIdle runs from the idle timer: abort when nothing moved for
// s.idle, otherwise sleep until the earliest moment that could be true.
func (s *session) checkIdle() {
	quiet := time.Since(s.start) - time.Duration(s.last.Load())
	if quiet >= s.idle {
		s.abort(ErrIdleTimeout, nil)
		return
	}
	s.timer.Reset(s.idle - quiet)
}

// fail records err as the session's error unless an earlier one exists or
// err is only the echo of our own abort closing the conns.
func (s *session) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil && !(s.aborted && errors.Is(err, net.ErrClosed)) {
		s.err = err
	}
}

// abort ends the whole relay: it records err, resets rst (when it is a TCP
// conn, so its peer learns the stream broke) and closes both conns, which
// wakes both directions.
func (s *session) abort(err error, rst net.Conn) {
	s.mu.Lock()
	if s.finished || s.aborted {
		s.mu.Unlock()
		return
	}
	if s.err == nil {
		s.err = err
	}
	s.aborted = true
	s.mu.Unlock()
	if tc, ok := rst.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // best effort: the conn is closed next either way
	}
	s.closeBoth()
}

func (s *session) closeBoth() {
	// Errors from Close are of no use here: the relay is over either way.
	_ = s.client.Close()
	_ = s.backend.Close()
}

// half is one direction of a relay.
type half struct {
	r        *Relayer
	s        *session
	src, dst net.Conn
	srcName  string // "client" or "backend", for errors
	dstName  string
	n        int64 // bytes written to dst
}

func (r *Relayer) newHalf(s *session, src, dst net.Conn) *half {
	h := &half{r: r, s: s, src: src, dst: dst, srcName: "client", dstName: "backend"}
	if src == s.backend {
		h.srcName, h.dstName = "backend", "client"
	}
	return h
}

// copyHalf copies one direction to its end and handles how it ended. It
// is named so goroutine dumps show what a relay goroutine does.
func copyHalf(h *half) {
	rerr, werr := h.copy()
	switch {
	case rerr != nil:
		// The source broke (reset): pass the breakage on to the other
		// side and stop the other direction too.
		h.s.abort(fmt.Errorf("read from %s: %w", h.srcName, rerr), h.dst)
	case werr != nil:
		// The destination is gone; the other direction still forwards
		// what it sent before and then ends on its EOF or error.
		h.s.fail(fmt.Errorf("write to %s: %w", h.dstName, werr))
		closeRead(h.src)
	default:
		// Clean EOF: forward the half-close. (No closeRead(h.src): the
		// source has ended its writes itself.)
		closeWrite(h.dst)
	}
}

// copy moves bytes until EOF or error, returning read and write errors
// apart. Splice is used when both ends are sockets that support it.
func (h *half) copy() (rerr, werr error) {
	src, sok := rawConn(h.src)
	dst, dok := rawConn(h.dst)
	if sok && dok {
		var handled bool
		rerr, werr, handled = h.splice(src, dst)
		if handled {
			return rerr, werr
		}
	}
	return h.generic()
}

// rawConn returns the RawConn of the socket types known to splice.
func rawConn(c net.Conn) (syscall.RawConn, bool) {
	var sc syscall.Conn
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil, false
	}
	rc, err := sc.SyscallConn()
	return rc, err == nil
}

// generic copies through a pooled buffer for conns that cannot splice,
// keeping read and write errors apart (io.Copy would merge them).
func (h *half) generic() (rerr, werr error) {
	bp := h.r.bufs.Get().(*[]byte)
	defer h.r.bufs.Put(bp)
	buf := *bp
	for {
		nr, err := h.src.Read(buf)
		if nr > 0 {
			h.s.touch()
			nw, ew := h.dst.Write(buf[:nr])
			h.n += int64(nw)
			if ew != nil {
				return nil, ew
			}
			if nw != nr {
				return nil, io.ErrShortWrite
			}
		}
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}

type closeWriter interface{ CloseWrite() error }
type closeReader interface{ CloseRead() error }

// closeWrite forwards a half-close. Errors are ignored: they mean the peer
// is already gone, which the other direction reports.
func closeWrite(c net.Conn) {
	if cw, ok := c.(closeWriter); ok {
		_ = cw.CloseWrite()
	}
}

// closeRead tells the kernel we read no more from c (a UNIX peer's writes
// then fail instead of piling up). Errors are ignored as in closeWrite.
func closeRead(c net.Conn) {
	if cr, ok := c.(closeReader); ok {
		_ = cr.CloseRead()
	}
}
