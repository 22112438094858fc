//go:build linux

package relay

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/internal/rawsock"
)

// Engine relays connections given as raw sockets in a few event loops of
// its own (one per two Ps): an epoll set per loop, edge-triggered, each socket
// registered once. It is the plain proxy path's data path: no net.Conn,
// no goroutine per connection or direction, no netpoller registration.
// Per short connection that is about a third less CPU than Relay
// (bench/README.md), and an idle connection costs its Job and two epoll
// items, no goroutine stack.
//
// The ends and the splice discipline are Relay's (see the package doc):
// EOF is forwarded as a half-close; a reset read from one side resets the
// other and ends the relay; a failed write ends its direction only; a
// direction takes a pooled pipe only while it has bytes to move. What
// Relay does with a context the Engine does not do per connection:
// AbortAll ends every relay at once (the server's shutdown). An idle
// timeout (Job.IdleTimeout) is a deadline in the loop's timer heap, as a
// connect timeout is: one entry per relay, moved on only when it comes up.
//
// The zero value is not usable: call NewEngine. An Engine is safe for
// concurrent use.
type Engine struct {
	mu    sync.Mutex
	loops []*loop // started on the first Add or Start
	// live is loops once started, until Close: what Add reads, without
	// the lock, per connection.
	live    atomic.Pointer[[]*loop]
	closed  bool
	aborted error
	next    atomic.Uint32
	start   time.Time
}

// Job is one connection for the Engine: the caller fills the exported
// fields, Add takes it over, and Done reports the end. The unexported
// fields are the relay's state, so a connection costs one allocation.
type Job struct {
	// Client and Backend are non-blocking, close-on-exec stream sockets
	// (TCP or UNIX). The Engine closes them when the relay ends, except
	// Client after a failed connect (see Result.ConnectFailed).
	Client, Backend int
	// Connecting is set when Backend's non-blocking connect is still in
	// progress (EINPROGRESS); the relay starts once it completes.
	Connecting bool
	// ConnectTimeout bounds a connect in progress; zero: no bound.
	ConnectTimeout time.Duration
	// Preamble, when set, is sent to the backend once it is connected,
	// before any byte of the client's (a PROXY protocol header). It is
	// not counted in Result.In; a backend that takes less than all of
	// it before going away ends the client-to-backend direction with a
	// write error, as a relayed byte would.
	Preamble []byte
	// Sent counts client bytes already passed to the backend (Forward);
	// they are counted in Result.In.
	Sent int64
	// IdleTimeout, when > 0, ends the relay with ErrIdleTimeout once no
	// byte has moved either way for that long, counted from the
	// backend's connect (Relay's Options.IdleTimeout).
	IdleTimeout time.Duration
	// Done is called once, when the relay has ended and the sockets are
	// closed, on a goroutine that calls the Done functions of the loop's
	// relays one after the other (see reporter). It may block for a
	// while (a log write) without stopping other relays. From then on
	// the Engine keeps nothing of the Job, which may be filled in anew
	// and added again (a retried connect).
	Done func(Result)

	loop  *loop
	slot  int32
	gen   uint32
	side  [2]side      // 0: client, 1: backend
	dir   [2]direction // 0: client -> backend, 1: backend -> client
	err   error        // first real error
	ended bool
	// clientErr is a client error Forward's peek took off the socket.
	clientErr error
	// last is the loop's clock when bytes last moved; idleArmed: the
	// job has its idle deadline in the loop's timer heap.
	last      int64
	idleArmed bool
}

// side is what epoll last said of one socket. Both start false: a socket
// registered edge-triggered reports its current state once, so nothing is
// tried that is known not to be ready.
type side struct {
	canRead, canWrite bool
	// broken: an event said EPOLLERR or EPOLLHUP. Only a connect in
	// progress looks at it: without it, writable means connected, and
	// SO_ERROR need not be asked.
	broken bool
}

// direction is one way of a relay.
type direction struct {
	src, dst int // index into Job.side / Job's sockets
	p        *pipe
	// buf replaces p when no pipe could be made (out of descriptors):
	// the bytes in flight are buf[off:off+inPipe]. See copyBuf.
	buf    []byte
	off    int
	inPipe int // bytes read from src, not yet written to dst
	// preamble: buf is the Job's Preamble, not a copy buffer of the
	// loop's; dropped, not pooled, once sent.
	preamble bool
	n        int64
	eof      bool // src ended; forward the half-close once the pipe is empty
	done     bool
}

// NewEngine returns an Engine; its loops start with the first Add.
func NewEngine() *Engine {
	return &Engine{start: time.Now()}
}

// maxLoops bounds the Engine's loops whatever GOMAXPROCS is.
const maxLoops = 8

// Start starts the loops unless they run, so that a caller can learn that
// Add would fail before it makes the sockets of a Job (a connect to the
// backend that is then dropped is a connection the backend sees).
func (e *Engine) Start() error {
	if e.live.Load() != nil {
		return nil
	}
	_, err := e.loopsFor()
	return err
}

// Add hands j to one of the loops. It returns an error, and keeps nothing
// (the caller still owns the sockets), only when the Engine is closed or a
// loop could not be created.
func (e *Engine) Add(j *Job) error {
	var loops []*loop
	if p := e.live.Load(); p != nil {
		loops = *p
	} else {
		var err error
		if loops, err = e.loopsFor(); err != nil {
			return err
		}
	}
	// Round robin, except that a loop that is awake takes the job
	// rather than one that would have to be woken (an eventfd write and
	// read and a context switch per connection).
	l := loops[int(e.next.Add(1))%len(loops)]
	if l.sleeping.Load() {
		for _, o := range loops {
			if !o.sleeping.Load() {
				l = o
				break
			}
		}
	}
	j.loop = l
	l.mu.Lock()
	l.queue = append(l.queue, j)
	l.queued.Store(true)
	l.mu.Unlock()
	if l.sleeping.CompareAndSwap(true, false) {
		l.wakeUp()
	}
	return nil
}

func (e *Engine) loopsFor() ([]*loop, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errors.New("relay engine closed")
	}
	if e.loops != nil {
		return e.loops, nil
	}
	// One loop per two Ps: a loop blocked in epoll_wait holds its P
	// in a system call, and with a loop on every P sysmon kept taking
	// them back for the accept loops (a thread hand-off per
	// connection). On 2 CPUs, one loop against two at 64 clients: 0.9
	// against 1.35 context switches per connection, about 7% more
	// connections/s.
	n := max(1, min(runtime.GOMAXPROCS(0)/2, maxLoops))
	loops := make([]*loop, 0, n)
	for range n {
		l, err := newLoop(e)
		if err != nil {
			for _, l := range loops {
				l.shut()
			}
			return nil, err
		}
		loops = append(loops, l)
	}
	for _, l := range loops {
		l.aborted = e.aborted
		go l.rep.run()
		go l.run()
	}
	e.loops = loops
	e.live.Store(&loops)
	return loops, nil
}

// AbortAll ends every relay now and every relay added later with err as
// Result.Err: both sockets are closed (a plain close, not a reset).
func (e *Engine) AbortAll(err error) {
	e.mu.Lock()
	e.aborted = err
	loops := e.loops
	e.mu.Unlock()
	for _, l := range loops {
		l.mu.Lock()
		l.aborted = err
		l.queued.Store(true)
		l.mu.Unlock()
		l.wakeUp()
	}
}

// Close aborts what still runs, stops the loops and waits for them, and
// closes their pipes. Add fails afterwards. Close is idempotent.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.live.Store(nil)
	loops := e.loops
	e.mu.Unlock()
	for _, l := range loops {
		l.mu.Lock()
		l.closing = true
		if l.aborted == nil {
			l.aborted = errors.New("relay engine closed")
		}
		l.queued.Store(true)
		l.mu.Unlock()
		l.wakeUp()
	}
	for _, l := range loops {
		<-l.done
		l.rep.close()
		l.shut()
	}
	return nil
}

// idlePipes reports the pipes the loops' pools hold (for tests).
func (e *Engine) idlePipes() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, l := range e.loops {
		n += l.pipes.idle()
	}
	return n
}

// loop is one event loop: its own epoll set, connections and pipes.
type loop struct {
	e    *Engine
	ep   int
	wake int // eventfd that interrupts epoll_wait
	done chan struct{}

	mu       sync.Mutex
	queue    []*Job // added, not yet registered
	aborted  error
	closing  bool
	queued   atomic.Bool // something in queue, or aborted/closing news
	sleeping atomic.Bool // in (or about to enter) epoll_wait

	// Owned by the loop's goroutine.
	jobs []*Job
	free []int32
	gen  uint32
	live int
	// connecting counts registered jobs whose connect is in progress;
	// idle, the jobs with an idle deadline in timers.
	connecting int
	idle       int
	pipes      pipePool
	// bufs are spare copy buffers (see copyBuf), for when no pipe can
	// be made.
	bufs   [][]byte
	timers timerHeap
	evs    [128]unix.EpollEvent
	intake []*Job
	// ended is this turn's reports, handed to rep at its end.
	ended []report
	// handoff: jobs were added since the loop last slept, so the next
	// sleep gives up the loop's P (see epollWaitHandoff).
	handoff bool
	rep     *reporter
}

// wakeTag marks the eventfd's epoll events (slots are >= 0).
const wakeTag = -1

func newLoop(e *Engine) (*loop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("relay engine: epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("relay engine: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: wakeTag}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(ep)
		unix.Close(wake)
		return nil, fmt.Errorf("relay engine: epoll_ctl: %w", err)
	}
	return &loop{e: e, ep: ep, wake: wake, done: make(chan struct{}), rep: newReporter()}, nil
}

// shut closes the loop's own fds once it has stopped.
func (l *loop) shut() {
	l.pipes.close()
	unix.Close(l.ep)
	unix.Close(l.wake)
}

// wakeUp wakes the loop from epoll_wait. The eventfd is non-blocking, so
// the write is a raw call (see rawsock): EAGAIN means the counter is
// full, and the loop wakes anyway.
func (l *loop) wakeUp() {
	one := uint64(1)
	unix.RawSyscall(unix.SYS_WRITE, uintptr(l.wake), uintptr(unsafe.Pointer(&one)), 8)
}

// run is the loop's goroutine. Its one call that blocks is epoll_wait
// when there is nothing to do (see epollWaitHandoff); everything else is
// raw and non-blocking.
func (l *loop) run() {
	defer close(l.done)
	for {
		if l.queued.Load() {
			if l.takeQueue() {
				l.flushReports()
				return
			}
		}
		// Under load events are usually waiting: collect them with a
		// raw call that cannot sleep, and block (through the runtime,
		// which may then give the P to another goroutine) only when
		// there are none.
		l.flushReports()
		n, err := rawEpollPoll(l.ep, l.evs[:])
		if n == 0 && err == nil {
			timeout := l.timeout()
			l.sleeping.Store(true)
			if l.queued.Load() {
				// Added between the check above and sleeping: Add
				// saw sleeping false and did not wake us.
				l.sleeping.Store(false)
				continue
			}
			if l.handoff {
				var e unix.Errno
				if n, e = epollWaitHandoff(l.ep, &l.evs[0], len(l.evs), timeout); e != 0 {
					err = e
				}
			} else {
				n, err = unix.EpollWait(l.ep, l.evs[:], timeout)
			}
			l.handoff = false
			l.sleeping.Store(false)
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// Only a bad epoll fd or event buffer makes epoll_wait
			// fail; both are the loop's own.
			panic(fmt.Sprintf("relay engine: epoll_wait: %v", err))
		}
		for i := range n {
			ev := &l.evs[i]
			if ev.Fd == wakeTag {
				var b uint64
				unix.RawSyscall(unix.SYS_READ, uintptr(l.wake), uintptr(unsafe.Pointer(&b)), 8)
				continue
			}
			j := l.jobs[ev.Fd]
			if j == nil || j.gen != uint32(ev.Pad)>>1 {
				continue // an event of a connection that has ended
			}
			s := &j.side[ev.Pad&1]
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				s.canRead = true
			}
			if ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				s.canWrite = true
			}
			if ev.Events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				s.broken = true
			}
			l.service(j)
		}
		if len(l.timers) > 0 {
			l.expire()
		}
	}
}

// takeQueue registers the queued jobs, applies an abort, and reports
// whether the loop is to stop.
func (l *loop) takeQueue() bool {
	l.mu.Lock()
	l.intake, l.queue = l.queue, l.intake[:0]
	aborted, closing := l.aborted, l.closing
	l.queued.Store(false)
	l.mu.Unlock()
	if len(l.intake) > 0 {
		l.handoff = true
	}
	for i, j := range l.intake {
		l.intake[i] = nil
		if aborted != nil {
			l.finishUnregistered(j, aborted)
			continue
		}
		l.register(j)
	}
	if aborted != nil {
		l.abortLive(aborted)
	}
	return closing && l.live == 0
}

// register gives j a slot and puts its sockets in the epoll set: the
// backend always, the client once the backend is connected (so that a
// failed connect can hand the client back untouched).
func (l *loop) register(j *Job) {
	if n := len(l.free); n > 0 {
		j.slot = l.free[n-1]
		l.free = l.free[:n-1]
		l.jobs[j.slot] = j
	} else {
		j.slot = int32(len(l.jobs))
		l.jobs = append(l.jobs, j)
	}
	l.gen = (l.gen + 1) & (1<<31 - 1)
	j.gen = l.gen
	j.dir[0] = direction{src: 0, dst: 1, n: j.Sent}
	j.dir[1] = direction{src: 1, dst: 0}
	l.live++
	if j.clientErr != nil {
		// As if read here: a reset passed on, the relay ended.
		l.record(j, fmt.Errorf("read from client: %w", j.clientErr))
		l.end(j, nil, true)
		return
	}
	if err := l.watch(j, 1); err != nil {
		l.connectFailed(j, err)
		return
	}
	if j.Connecting {
		l.connecting++
		if j.ConnectTimeout > 0 {
			l.addTimer(timer{at: l.now() + int64(j.ConnectTimeout), slot: j.slot, gen: j.gen})
		}
		return
	}
	if err := l.watch(j, 0); err != nil {
		l.end(j, err, false)
		return
	}
	l.connected(j)
}

// connected starts the relay of j, whose backend has just connected: its
// preamble goes first, and its idle timeout starts.
func (l *loop) connected(j *Job) {
	if len(j.Preamble) > 0 {
		d := &j.dir[0]
		d.buf, d.off, d.inPipe, d.preamble = j.Preamble, 0, len(j.Preamble), true
		j.Preamble = nil // the direction holds it until it is sent
	}
	l.armIdle(j)
}

// armIdle starts j's idle timeout, if it has one.
func (l *loop) armIdle(j *Job) {
	if j.IdleTimeout <= 0 {
		return
	}
	j.last = l.now()
	j.idleArmed = true
	l.idle++
	l.addTimer(timer{at: j.last + int64(j.IdleTimeout), slot: j.slot, gen: j.gen, idle: true})
}

// watch adds socket i of j (0 client, 1 backend) to the epoll set.
func (l *loop) watch(j *Job, i int) error {
	fd := j.Client
	if i == 1 {
		fd = j.Backend
	}
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET,
		Fd:     j.slot,
		Pad:    int32(j.gen<<1) | int32(i),
	}
	if _, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(l.ep), unix.EPOLL_CTL_ADD, uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0); e != 0 {
		return fmt.Errorf("relay engine: epoll_ctl: %w", e)
	}
	return nil
}

// now is the loop's clock for connect and idle deadlines: monotonic
// nanoseconds.
func (l *loop) now() int64 { return int64(time.Since(l.e.start)) }

// timeout is epoll_wait's timeout in milliseconds: until the earliest
// deadline, rounded up, or -1.
func (l *loop) timeout() int {
	if len(l.timers) == 0 {
		return -1
	}
	d := l.timers[0].at - l.now()
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

// expire fails the connects whose deadline has passed and ends the relays
// that have been idle for their IdleTimeout.
func (l *loop) expire() {
	now := l.now()
	for len(l.timers) > 0 && l.timers[0].at <= now {
		t := l.timers.pop()
		j := l.jobs[t.slot]
		switch {
		case j == nil || j.gen != t.gen:
		case !t.idle:
			if j.Connecting {
				l.connectFailed(j, fmt.Errorf("connect: %w", os.ErrDeadlineExceeded))
			}
		case now-j.last >= int64(j.IdleTimeout):
			l.end(j, ErrIdleTimeout, false)
		default:
			// Bytes moved since the deadline was set: the next one is
			// an IdleTimeout after the last of them, in the future.
			t.at = j.last + int64(j.IdleTimeout)
			l.addTimer(t)
		}
	}
}

// service moves what can be moved after an event on j.
func (l *loop) service(j *Job) {
	if j.Connecting {
		b := &j.side[1]
		if !b.canWrite {
			return
		}
		if b.broken {
			// Refused, reset or unreachable: SO_ERROR says which. (A
			// backend that accepted and hung up at once has none, and
			// is relayed as connected: the pump finds the EOF.)
			if err := rawsock.SoError(j.Backend); err != nil {
				l.connectFailed(j, err)
				return
			}
		}
		j.Connecting = false
		l.connecting--
		if err := l.watch(j, 0); err != nil {
			l.end(j, err, false)
			return
		}
		l.connected(j)
		// The client's state arrives as its registration event.
	}
	var moved int64
	if j.idleArmed {
		moved = j.moved()
	}
	for i := range j.dir {
		d := &j.dir[i]
		if d.done {
			continue
		}
		rerr, werr := l.pump(j, d, &j.dir[1-i])
		switch {
		case rerr != nil:
			// The source broke (reset): pass the breakage on and end
			// the relay.
			l.record(j, fmt.Errorf("read from %s: %w", sideName(d.src), rerr))
			l.end(j, nil, true)
			return
		case werr != nil:
			// The destination is gone: this direction ends; the other
			// still forwards what was sent before and ends on its own.
			l.record(j, fmt.Errorf("write to %s: %w", sideName(d.dst), werr))
			d.done = true
			l.dropPipe(d)
			rawsock.Shutdown(j.fd(d.src), unix.SHUT_RD)
		}
	}
	if j.dir[0].done && j.dir[1].done {
		l.end(j, nil, false)
		return
	}
	if j.idleArmed && j.moved() != moved {
		j.last = l.now()
	}
}

// moved counts the bytes j has read, for telling whether any moved.
func (j *Job) moved() int64 {
	return j.dir[0].n + int64(j.dir[0].inPipe) + j.dir[1].n + int64(j.dir[1].inPipe)
}

func sideName(i int) string {
	if i == 0 {
		return "client"
	}
	return "backend"
}

func (j *Job) fd(i int) int {
	if i == 0 {
		return j.Client
	}
	return j.Backend
}

// pump moves d's bytes until a socket would block or d ends, keeping read
// and write errors apart.
func (l *loop) pump(j *Job, d, other *direction) (rerr, werr error) {
	src, dst := &j.side[d.src], &j.side[d.dst]
	for {
		if d.inPipe > 0 {
			if !dst.canWrite {
				return nil, nil
			}
			var n int64
			var e error
			if d.buf != nil {
				n, e = rawSend(j.fd(d.dst), d.buf[d.off:d.off+d.inPipe])
				d.off += int(n)
			} else {
				n, e = rawSplice(d.p.r, j.fd(d.dst), d.inPipe)
			}
			switch {
			case e == unix.EINTR:
				continue
			case e == unix.EAGAIN:
				dst.canWrite = false
				return nil, nil
			case e != nil:
				return nil, os.NewSyscallError(d.writeCall(), e)
			}
			d.inPipe -= int(n)
			if d.preamble {
				if d.inPipe == 0 {
					d.buf, d.off, d.preamble = nil, 0, false
				}
				continue
			}
			d.n += n
			continue
		}
		if d.eof {
			d.done = true
			if other.done && other.eof {
				// Both directions ended cleanly: the relay ends now,
				// and the close sends the same FIN (nothing is left
				// unread) without a shutdown call of its own.
				return nil, nil
			}
			// Errors mean the peer is gone; the other direction finds
			// out on its own.
			rawsock.Shutdown(j.fd(d.dst), unix.SHUT_WR)
			return nil, nil
		}
		if !src.canRead {
			return nil, nil
		}
		if d.p == nil && d.buf == nil {
			p, err := l.pipes.get()
			if err != nil {
				// Out of descriptors (or pipe memory): copy through a
				// buffer rather than break a working connection.
				d.buf = l.copyBuf()
			}
			d.p = p
		}
		var n int64
		var e error
		if d.buf != nil {
			var k int
			k, e = rawsock.Read(j.fd(d.src), d.buf)
			n, d.off = int64(k), 0
		} else {
			n, e = rawSplice(j.fd(d.src), d.p.w, d.p.size)
		}
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			// Drained: the (empty) pipe goes back while we wait.
			src.canRead = false
			l.dropPipe(d)
			return nil, nil
		case e != nil:
			return os.NewSyscallError(d.readCall(), e), nil
		case n == 0:
			d.eof = true
			l.dropPipe(d)
			continue
		}
		d.inPipe = int(n)
	}
}

func (d *direction) readCall() string {
	if d.buf != nil {
		return "read"
	}
	return "splice"
}

func (d *direction) writeCall() string {
	if d.buf != nil {
		return "sendto"
	}
	return "splice"
}

// copyBufSize is the buffer a direction copies through when no splice
// pipe can be made. Only directions moving data at such a time hold one.
const copyBufSize = 64 << 10

// maxIdleBufs bounds the loop's spare copy buffers.
const maxIdleBufs = 16

// copyBuf returns a spare copy buffer or a new one.
func (l *loop) copyBuf() []byte {
	if n := len(l.bufs); n > 0 {
		b := l.bufs[n-1]
		l.bufs[n-1] = nil
		l.bufs = l.bufs[:n-1]
		return b
	}
	return make([]byte, copyBufSize)
}

// rawSend writes b to a non-blocking socket, raw like rawSplice;
// MSG_NOSIGNAL: a peer that is gone is an EPIPE, not a SIGPIPE.
func rawSend(fd int, b []byte) (int64, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int64(n), nil
}

// dropPipe releases d's pipe: to the pool when empty, else closed (its
// bytes will never be delivered); or its copy buffer, to the loop.
func (l *loop) dropPipe(d *direction) {
	switch {
	case d.buf != nil:
		if !d.preamble && len(l.bufs) < maxIdleBufs {
			l.bufs = append(l.bufs, d.buf)
		}
		d.buf, d.off, d.preamble = nil, 0, false
	case d.p == nil:
		return
	case d.inPipe == 0:
		l.pipes.put(d.p)
	default:
		d.p.close()
	}
	d.p, d.inPipe = nil, 0
}

// record keeps the first real error of j.
func (l *loop) record(j *Job, err error) {
	if j.err == nil {
		j.err = err
	}
}

// connectFailed ends j whose backend never connected: the backend is
// closed, the client (never registered) is left to the caller.
func (l *loop) connectFailed(j *Job, err error) {
	if j.Connecting {
		l.connecting--
	}
	rawsock.Close(j.Backend)
	l.free1(j)
	l.ended = append(l.ended, report{j.Done, Result{Err: err, ConnectFailed: true}})
}

// end closes j's sockets and reports it. abortErr, when set, becomes the
// error unless one was recorded; rst resets the TCP sockets first (a
// reset read from one side is passed on as a reset).
func (l *loop) end(j *Job, abortErr error, rst bool) {
	if j.ended {
		return
	}
	j.ended = true
	if abortErr != nil {
		l.record(j, abortErr)
	}
	for i := range j.dir {
		l.dropPipe(&j.dir[i])
	}
	for _, fd := range [2]int{j.Client, j.Backend} {
		if rst {
			// Best effort: on a UNIX socket it fails and the close is
			// plain.
			_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
		}
		rawsock.Close(fd)
	}
	l.free1(j)
	l.ended = append(l.ended, report{j.Done, Result{In: j.dir[0].n, Out: j.dir[1].n, Err: j.err}})
}

// finishUnregistered ends a job that never got a slot, or whose client
// was never registered: both sockets are closed.
func (l *loop) finishUnregistered(j *Job, err error) {
	rawsock.Close(j.Client)
	rawsock.Close(j.Backend)
	l.ended = append(l.ended, report{j.Done, Result{Err: err}})
}

// flushReports hands the turn's reports to the reporter, or calls them
// here when it is too far behind.
func (l *loop) flushReports() {
	if len(l.ended) == 0 {
		return
	}
	if !l.rep.hand(l.ended) {
		for i := range l.ended {
			l.ended[i].done(l.ended[i].r)
		}
		clear(l.ended)
	}
	l.ended = l.ended[:0]
}

// free1 gives j's slot back.
func (l *loop) free1(j *Job) {
	if j.idleArmed {
		j.idleArmed = false
		l.idle--
	}
	l.jobs[j.slot] = nil
	l.free = append(l.free, j.slot)
	l.live--
}

// abortLive ends every registered job with err.
func (l *loop) abortLive(err error) {
	for _, j := range l.jobs {
		if j == nil {
			continue
		}
		if j.Connecting {
			// The client was never registered: end it as a job that
			// never got a slot.
			l.connecting--
			l.free1(j)
			l.finishUnregistered(j, err)
			continue
		}
		l.end(j, err, false)
	}
}

// The loop's calls on its sockets are raw system calls (internal/rawsock),
// like rawSplice: on non-blocking sockets that never have SO_LINGER > 0
// none of them can sleep, and through the runtime's syscall path each one
// was a chance for sysmon to hand the loop's P to another thread.

// rawEpollPoll collects ready events without waiting (epoll_pwait with a
// zero timeout, which every architecture has).
func rawEpollPoll(ep int, evs []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// A loop with nothing to do sleeps in epoll_wait. Through the syscall
// package (entersyscall) it keeps its P while it sleeps. While
// connections are coming in, the accept loops keep the other Ps busy,
// and sysmon, finding the loop's P in a system call on two of its 20 µs
// ticks in a row, took it back: a thread woken to run it, the loop's
// thread put to sleep on its return with no P to go back to, and sysmon
// ticking every 20 µs again for a millisecond or more. So a loop that
// took new jobs since it last slept sleeps through entersyscallblock,
// the runtime's entry for a call known to block (what its own
// notetsleepg uses for a goroutine that sleeps in futex, such as
// os/signal's receiver): the P goes at once to a goroutine waiting for
// one, or to the idle list, where the loop takes it back on its
// return when nobody else has. Measured with /proc/PID/task/*/status
// around 20,000 short connections to a TCP backend at 64 clients:
// sysmon's sleeps 0.29 -> 0.10 per connection, all of acceptd's
// voluntary switches 0.49 -> 0.27, its CPU 146 -> 131 µs per
// connection.
//
// A loop that only relays (one bulk stream) keeps entersyscall: there,
// with the other P idle, entersyscallblock's hand-off wakes a thread to
// poll the network each time the loop sleeps (3-4x the voluntary
// switches per MB), and sysmon has nothing to take back.
//
// entersyscallblock and exitsyscall are pushed linknames, kept for
// gVisor (go.dev/issue/67401).

//go:linkname entersyscallblock runtime.entersyscallblock
func entersyscallblock()

//go:linkname exitsyscall runtime.exitsyscall
func exitsyscall()

// epollWaitHandoff is epoll_wait on ep into evs[:n] for up to msec
// milliseconds (-1: no limit), with the loop's P handed off for the
// wait. Between entersyscallblock and exitsyscall nothing may grow the
// stack or be instrumented: nosplit and norace, as the syscall
// package's own system calls, and only nosplit calls.
//
//go:nosplit
//go:norace
func epollWaitHandoff(ep int, evs *unix.EpollEvent, n, msec int) (int, unix.Errno) {
	entersyscallblock()
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(evs)), uintptr(n), uintptr(msec), 0, 0)
	exitsyscall()
	return int(r), e
}

// timer is a connect deadline, or an idle one; stale ones (the job ended
// or connected) are skipped when they come up. An idle deadline that
// comes up after bytes moved is pushed again for the new one.
type timer struct {
	at   int64
	slot int32
	gen  uint32
	idle bool
}

// timerHeap is a min-heap by deadline (container/heap would box every
// pushed timer).
type timerHeap []timer

func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if a[p].at <= a[i].at {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *timerHeap) pop() timer {
	a := *h
	t := a[0]
	n := len(a) - 1
	a[0] = a[n]
	*h = a[:n]
	h.down(0)
	return t
}

// down moves the timer at i down to its place.
func (h *timerHeap) down(i int) {
	a := *h
	n := len(a)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && a[c+1].at < a[c].at {
			c++
		}
		if a[i].at <= a[c].at {
			return
		}
		a[i], a[c] = a[c], a[i]
		i = c
	}
}

// init restores the heap order of any slice of timers.
func (h *timerHeap) init() {
	for i := len(*h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// addTimer pushes t. Deadlines of connects that completed, and of relays
// that ended, stay in the heap until they come up; when they outnumber
// the live ones the heap is rebuilt from the live ones, so it never grows
// beyond a small multiple of the connects in progress and the relays
// with an idle timeout (each has one deadline in the heap).
func (l *loop) addTimer(t timer) {
	if len(l.timers) > 2*(l.connecting+l.idle)+64 {
		// Keep the live deadlines in place and heapify them: a fresh
		// slice per rebuild was an allocation every few dozen connects.
		live := l.timers[:0]
		for _, o := range l.timers {
			if j := l.jobs[o.slot]; j != nil && j.gen == o.gen && (o.idle || j.Connecting) {
				live = append(live, o)
			}
		}
		clear(l.timers[len(live):])
		l.timers = live
		l.timers.init()
	}
	l.timers.push(t)
}
