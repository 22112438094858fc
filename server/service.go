package server

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/config"
	"github.com/acceptd/acceptd/spawn"
)

// A Handler serves one accepted connection. Handle owns c: it must close c
// before it returns, and it must return promptly once ctx is done or once
// the instance is stopped. It reports how the connection ended.
type Handler interface {
	Handle(ctx context.Context, c *Conn, in *instance) outcome
}

// outcome is how one connection ended, for its log line and counters.
type outcome struct {
	// refused is set when the connection was closed without being served.
	refused refusal
	err     error
	// result is set when a process served the connection.
	result *spawn.Result
	// failed marks a result that counts as a failure (non-zero exit
	// without ignore_exit_status, or a signal).
	failed bool
	// in and out are relayed bytes (client to backend and back).
	in, out int64
}

// settings is what a reload may change in a service; a connection uses the
// settings it was accepted under until it ends.
type settings struct {
	cfg     *config.Service
	handler Handler
	acl     acl
	rate    *rateLimiter
}

// service is one running service: its listeners, limits, counters and
// live instances. It keeps its identity (and counters) across reloads.
type service struct {
	name string
	log  *zap.Logger
	obs  Observer
	cur  atomic.Pointer[settings]

	slots *slots
	insts registry
	// conns counts handled connections; shutdown waits for it.
	conns sync.WaitGroup

	seq       atomic.Uint64
	accepted  atomic.Uint64
	connected atomic.Int64
	refused   atomic.Uint64
	bytesIn   atomic.Uint64
	bytesOut  atomic.Uint64
	reasons   counterMap
	exits     counterMap
	// fields holds *[]zap.Field for logEnd: passed to a Core through an
	// interface, the slice of a connection's ~12 fields escapes, and it
	// was half of what a relayed connection allocated (about 1 KiB of
	// 2). acceptd's cores encode the fields before Write returns.
	fields sync.Pool

	// listeners currently feeding this service; guarded by the server's
	// table lock.
	listeners []*listener
}

// counterMap is a small map of named counters.
type counterMap struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (c *counterMap) add(k string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]uint64{}
	}
	c.m[k]++
	c.mu.Unlock()
}

func (c *counterMap) snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return nil
	}
	out := make(map[string]uint64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// serve accepts on l until l is closed or ctx is done. Accept errors that
// concern one client are skipped; running out of fds or memory backs off.
//
// Connections accepted by the loop are handled under hctx, which outlives
// ctx during shutdown so that instances may finish.
func serve(ctx, hctx context.Context, l *listener, idle *idleTracker) {
	defer l.extraLoops.Wait()
	var delay time.Duration
	var acc *acceptor // made when the socket is first on the raw path
	for {
		// The listener may pass to another service on reload.
		s := l.svc.Load()
		st := s.cur.Load()
		if ex := st.cfg.Exec; ex != nil && !ex.Accept {
			if !s.serveWait(ctx, hctx, l, st) {
				return
			}
			continue
		}
		if l.pc != nil {
			if !serveDatagram(l, idle) {
				return
			}
			continue
		}
		if st.cfg.Overflow == config.OverflowWait && !s.slots.waitFree(ctx) {
			return
		}
		var err error
		if rawPath(st, l) {
			if parallelAccept(st) {
				l.spread(ctx, hctx, idle)
			}
			var fd int
			var sa syscall.Sockaddr
			if acc == nil {
				acc = l.newAcceptor()
			}
			flags := acceptFlags(st)
			if fd, sa, err = acc.accept(flags); err == nil {
				dispatchAccepted(ctx, hctx, l, fd, sa, flags)
			}
		} else {
			var c net.Conn
			if c, err = l.ln.Accept(); err == nil {
				l.svc.Load().dispatch(hctx, c)
			}
		}
		if err == nil {
			delay = 0
			idle.touch()
			if !s.ratePause(ctx, st) {
				return
			}
		} else if !s.acceptFailed(ctx, err, &delay) {
			return
		}
	}
}

// dispatchAccepted hands a raw accepted socket to the service and settings
// that own the listener now. A loop may have waited in accept across a
// reload: its connection came after the reload and is the new
// configuration's (serving it with the settings loaded before the wait
// sent an occasional client to the old proxy after a reload to exec).
// flags are the accept's; a socket for settings that want the other
// blocking mode is switched, and one for settings off the raw path
// becomes a net.Conn.
//
// ctx is the accept loops': a loop that waits for a slot (overflow =
// "wait", see take) stops waiting when accepting stops.
func dispatchAccepted(ctx, hctx context.Context, l *listener, fd int, sa syscall.Sockaddr, flags int) {
	s := l.svc.Load()
	st := s.cur.Load()
	if !rawPath(st, l) {
		s.dispatchFD(hctx, fd)
		return
	}
	if want := acceptFlags(st); want != flags {
		if err := unix.SetNonblock(fd, want&unix.SOCK_NONBLOCK != 0); err != nil {
			s.refuseRaw(fd, sa, refusedSpawn)
			return
		}
	}
	s.dispatchRaw(ctx, hctx, st, l, fd, sa)
}

// acceptFailed handles an accept error and reports whether the loop goes
// on. delay is the loop's back-off.
func (s *service) acceptFailed(ctx context.Context, err error, delay *time.Duration) bool {
	switch {
	case errors.Is(err, net.ErrClosed):
		return false
	case isResourceExhausted(err):
		// Out of fds or memory: accepting again at once would spin;
		// wait for connections to end and free what we need.
		*delay = min(max(2**delay, 5*time.Millisecond), time.Second)
		s.log.Warn("accept failed; backing off", zap.Error(err), zap.Duration("retry_in", *delay))
		return sleepCtx(ctx, *delay)
	default:
		// ECONNABORTED and the like concern one client only.
		s.log.Debug("accept failed", zap.Error(err))
		return ctx.Err() == nil
	}
}

// parallelAccept reports whether an exec service on the fast path may be
// served by several accept loops at once. overflow = "wait" and
// rate_limit keep one loop: their pauses are decisions about the next
// connection, which two loops would each make on their own.
func parallelAccept(st *settings) bool {
	return st.cfg.Overflow != config.OverflowWait && st.rate == nil
}

// maxAcceptLoops bounds a listener's accept loops (see spread).
const maxAcceptLoops = 8

// spread starts the listener's extra accept loops unless they run. Only
// the listener's first loop calls it.
//
// A spawn that waits for its child's exec (the helper's path, and every
// spawn under the race detector; see spawn.Spec.NoExecWait) holds its
// thread and its P (GOMAXPROCS slot) from the vfork until then: a single
// loop leaves the other cores idle meanwhile (about 12% of a 2-core
// machine at 64 clients) and cannot accept the next client. With one
// loop per P, one loop accepts while another spawns: about 1.2 times the
// connections/s of one loop at 8 and at 64 clients (bench/README.md).
// On the plain path, whose spawn returns before the exec, one loop and
// two measured the same within the machine's noise (session 12).
func (l *listener) spread(ctx, hctx context.Context, idle *idleTracker) {
	if l.extra.Load() != 0 {
		return
	}
	n := min(runtime.GOMAXPROCS(0), maxAcceptLoops) - 1
	l.extra.Add(int32(n))
	for range n {
		l.extraLoops.Go(func() {
			defer l.extra.Add(-1)
			serveMore(ctx, hctx, l, idle)
		})
	}
}

// serveMore is an extra accept loop of a fast-path exec listener. It ends
// when the listener closes or a reload gives the socket a service that is
// not fast-path or not parallelAccept; the first loop starts it again
// when that changes back.
func serveMore(ctx, hctx context.Context, l *listener, idle *idleTracker) {
	var delay time.Duration
	acc := l.newAcceptor()
	for {
		s := l.svc.Load()
		st := s.cur.Load()
		if !rawPath(st, l) || !parallelAccept(st) {
			return
		}
		flags := acceptFlags(st)
		fd, sa, err := acc.accept(flags)
		if err != nil {
			if !s.acceptFailed(ctx, err, &delay) {
				return
			}
			continue
		}
		delay = 0
		dispatchAccepted(ctx, hctx, l, fd, sa, flags)
		idle.touch()
	}
}

// ratePause counts one accepted connection against rate_limit and pauses
// the accept loop until the window has passed when the limit is reached.
// It reports false when ctx ended the pause.
func (s *service) ratePause(ctx context.Context, st *settings) bool {
	if st.rate == nil {
		return true
	}
	pause := st.rate.take(time.Now())
	if pause <= 0 {
		return true
	}
	s.log.Warn("rate limit reached; pausing accepts",
		zap.Int("connections", st.rate.n), zap.Duration("interval", st.rate.interval), zap.Duration("resume_in", pause))
	if !sleepCtx(ctx, pause) {
		return false
	}
	s.log.Info("resuming accepts after rate limit")
	return true
}

func isResourceExhausted(err error) bool {
	return errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) ||
		errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dispatch applies allow/deny and limits, then hands c to the service's
// Handler on its own goroutine. From here on, exactly one party owns c.
func (s *service) dispatch(ctx context.Context, c net.Conn) {
	st := s.cur.Load()
	now := time.Now()
	var remoteIP netip.Addr
	if tc, ok := c.(*net.TCPConn); ok {
		remoteIP = tc.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		// Go turns TCP_NODELAY on for every accepted conn; inetd and
		// systemd leave Nagle on unless asked (NoDelay=).
		if !st.cfg.Socket.NoDelay {
			tc.SetNoDelay(false)
		}
		if st.cfg.Socket.KeepAlive {
			tc.SetKeepAlive(true)
		}
	}
	if st.cfg.AcceptProxyProtocol {
		if untrustedProxy(st, remoteIP) {
			s.refuse(c, refusedProxyHdr, now)
			return
		}
		// Reading the header may block: it happens on the connection's
		// own goroutine, and the limits apply to the real client.
		s.conns.Add(1)
		go s.handleProxied(ctx, st, c, now)
		return
	}
	s.admit(ctx, nil, st, c, remoteIP, now, nil)
}

// realPeer is the client and local address a PROXY header declared.
type realPeer struct{ remote, local netip.AddrPort }

// admit applies allow/deny and the limits to a client at remoteIP and
// starts handling c. The caller has not counted c in s.conns.
//
// wait is take's: nil on the accept loop, which waited for a free slot
// before it accepted.
func (s *service) admit(ctx, wait context.Context, st *settings, c net.Conn, remoteIP netip.Addr, now time.Time, real *realPeer) {
	seq, src, why := s.take(wait, st, remoteIP)
	if why != "" {
		s.refuse(c, why, now)
		return
	}
	if ph, ok := st.handler.(*proxyHandler); ok && ph.engine != nil && s.relayDetached(ctx, st, ph, c, seq, src, now, real) {
		return
	}
	go s.handle(ctx, st, c, seq, src, now, real)
}

// relayDetached relays c, admitted as seq, on ph's engine: its descriptor
// is duplicated out of the net package's (the duplicate shares its
// non-blocking open file) and c is closed, so that neither a goroutine nor
// the netpoller holds the connection while it is relayed. It reports
// false, having changed nothing, when c's descriptor cannot be
// duplicated; the caller then serves c as before.
func (s *service) relayDetached(ctx context.Context, st *settings, ph *proxyHandler, c net.Conn, seq uint64, src netip.Prefix, now time.Time, real *realPeer) bool {
	conn := &Conn{Seq: seq, Accepted: now}
	conn.Remote, conn.Local = peerInfo(c, &conn.Peer)
	conn.setReal(real)
	fd, err := dupConn(c)
	if err != nil {
		return false
	}
	c.Close()
	conn.Instance = instanceName(s.name, seq, &conn.Peer, conn.Local, conn.Remote)
	s.relay(ctx, st, ph, fd, conn, src)
	return true
}

// dupConn duplicates c's descriptor, close-on-exec.
func dupConn(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, errors.New("connection has no descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	return dupFD(rc)
}

// dupFD duplicates rc's descriptor, close-on-exec. The duplicate shares
// the open file: its O_NONBLOCK and the socket itself.
func dupFD(rc syscall.RawConn) (int, error) {
	fd, derr := -1, error(nil)
	if err := rc.Control(func(f uintptr) {
		fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl", derr)
	}
	return fd, nil
}

// take applies allow/deny and the limits to a client at remoteIP. When it
// admits the client it counts the connection (accepted, connected, and in
// s.conns, which the caller's handler must mark done) and returns its
// sequence number and per-source slot; else it says why not.
//
// With overflow = "wait" and a non-nil wait, a client over
// max_connections waits for a slot until wait ends. The accept loop waits
// for one before it accepts, but with accept_proxy_protocol the slot is
// taken once the header is read, and a connection whose header was still
// on its way may have taken it in between: the client the loop has
// accepted then waits, as it would have in the backlog, rather than being
// refused. A loop must wait with its own context, which ends when
// accepting stops: shutdown waits for the loops before it stops the
// connections that hold the slots.
func (s *service) take(wait context.Context, st *settings, remoteIP netip.Addr) (seq uint64, src netip.Prefix, why refusal) {
	if !st.acl.allows(remoteIP) {
		return 0, src, refusedDeny
	}
	for {
		src, why = s.slots.acquire(remoteIP)
		if why != refusedLimit || st.cfg.Overflow != config.OverflowWait || wait == nil || !s.slots.waitFree(wait) {
			break
		}
	}
	if why != "" {
		return 0, src, why
	}
	seq = s.seq.Add(1) - 1
	s.accepted.Add(1)
	s.connected.Add(1)
	s.conns.Add(1) // safe: shutdown waits for serve to return before conns.Wait
	return seq, src, ""
}

// handleProxied reads the PROXY header of c, then admits c as coming from
// the client the header names.
func (s *service) handleProxied(ctx context.Context, st *settings, c net.Conn, now time.Time) {
	defer s.conns.Done()
	hdr, err := readProxyHeader(c)
	if err != nil {
		c.Close()
		s.headerRefused(c.RemoteAddr().String(), err)
		return
	}
	var remoteIP netip.Addr
	if tc, ok := c.(*net.TCPConn); ok {
		remoteIP = tc.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	}
	remoteIP, real := realPeerOf(hdr, remoteIP)
	// Off the accept loop: a wait for a slot ends when shutdown stops
	// the slots, or with the handlers.
	s.admit(ctx, ctx, st, c, remoteIP, now, real)
}

// untrustedProxy reports whether accept_proxy_protocol's trusted_proxies
// leaves out a peer at ip (an empty list trusts every peer).
func untrustedProxy(st *settings, ip netip.Addr) bool {
	return len(st.cfg.TrustedProxies) > 0 && !(acl{allow: st.cfg.TrustedProxies}).allows(ip)
}

// headerRefused logs and counts a connection from remote refused for its
// PROXY header (its socket already closed). Unlike the refusals at the
// door it is logged at info: it means a misconfigured balancer.
func (s *service) headerRefused(remote string, err error) {
	if ce := s.log.Check(zap.InfoLevel, "connection refused"); ce != nil {
		ce.Write(zap.String("remote", remote), zap.String("reason", string(refusedProxyHdr)), zap.Error(err))
	}
	s.refused.Add(1)
	s.reasons.add(string(refusedProxyHdr))
}

// refuse closes c unserved and counts it. A refusal is logged at debug
// level only: a flood of them must not flood the log.
func (s *service) refuse(c net.Conn, why refusal, now time.Time) {
	if tc, ok := c.(*net.TCPConn); ok {
		// Reset rather than FIN, so the client learns at once.
		tc.SetLinger(0)
	}
	if ce := s.log.Check(zap.DebugLevel, "connection refused"); ce != nil {
		ce.Write(zap.String("remote", c.RemoteAddr().String()), zap.String("reason", string(why)))
	}
	c.Close()
	s.refused.Add(1)
	s.reasons.add(string(why))
}

// handle serves one connection and logs it once when it ends.
func (s *service) handle(ctx context.Context, st *settings, c net.Conn, seq uint64, src netip.Prefix, accepted time.Time, real *realPeer) {
	defer s.conns.Done()
	conn := &Conn{Conn: c, Seq: seq, Accepted: accepted}
	conn.Remote, conn.Local = peerInfo(c, &conn.Peer)
	conn.setReal(real)
	conn.Instance = instanceName(s.name, seq, &conn.Peer, conn.Local, conn.Remote)
	in := s.begin(conn)
	o := st.handler.Handle(ctx, conn, in)
	s.end(st, conn, in, o, src)
}

// setReal makes c's client and local address the ones a PROXY header
// declared (nil: c's own stand).
func (c *Conn) setReal(real *realPeer) {
	if real == nil {
		return
	}
	p := &c.Peer
	p.RemoteIP, p.RemotePort = real.remote.Addr().Unmap(), int(real.remote.Port())
	p.LocalIP, p.LocalPort = real.local.Addr().Unmap(), int(real.local.Port())
	c.Remote = netip.AddrPortFrom(p.RemoteIP, real.remote.Port()).String()
	c.Local = netip.AddrPortFrom(p.LocalIP, real.local.Port()).String()
}

// begin registers a connection's instance for the status.
func (s *service) begin(c *Conn) *instance {
	in := &instance{name: c.Instance, remote: c.Remote, local: c.Local, started: c.Accepted}
	in.uid.Store(-1)
	in.gid.Store(-1)
	s.insts.add(c.Seq, in)
	return in
}

// end is the bookkeeping of a connection that has ended: the counters,
// its slot, and its one log line.
func (s *service) end(st *settings, conn *Conn, in *instance, o outcome, src netip.Prefix) {
	accepted := conn.Accepted
	s.insts.remove(conn.Seq)
	s.slots.release(src)
	s.connected.Add(-1)
	s.bytesIn.Add(uint64(o.in))
	s.bytesOut.Add(uint64(o.out))
	dur := time.Since(accepted)
	if s.obs != nil {
		s.obs.ConnectionEnded(s.name, dur)
	}
	s.logEnd(st, conn, in, o, dur)
}

func (s *service) logEnd(st *settings, c *Conn, in *instance, o outcome, dur time.Duration) {
	level := zap.InfoLevel
	msg := "connection ended"
	if o.refused != "" {
		s.refused.Add(1)
		s.reasons.add(string(o.refused))
		level, msg = zap.WarnLevel, "connection refused"
	}
	if o.result != nil {
		res := "success"
		switch {
		case o.failed && !o.result.Exited:
			res = "signal"
		case o.failed:
			res = "failure"
		}
		s.exits.add(res)
		if o.failed {
			level = zap.WarnLevel
		}
	}
	ce := s.log.Check(level, msg)
	if ce == nil {
		return
	}
	fp, _ := s.fields.Get().(*[]zap.Field)
	if fp == nil {
		fp = new([]zap.Field)
	}
	fields := append((*fp)[:0],
		zap.String("instance", c.Instance),
		zap.String("remote", c.Remote),
		zap.String("local", c.Local),
		zap.Duration("duration", dur))
	if pid := in.pid.Load(); pid > 0 {
		fields = append(fields, zap.Int64("pid", pid), zap.Int64("uid", in.uid.Load()), zap.Int64("gid", in.gid.Load()))
	}
	if o.refused != "" {
		fields = append(fields, zap.String("reason", string(o.refused)))
	}
	if o.result != nil {
		r := o.result
		fields = append(fields, zap.String("exit", r.String()),
			zap.Duration("cpu_user", r.UserTime), zap.Duration("cpu_system", r.SysTime),
			zap.Int64("max_rss", r.MaxRSS))
	}
	if st.cfg.Mode == config.ModeProxy {
		fields = append(fields, zap.Int64("bytes_in", o.in), zap.Int64("bytes_out", o.out))
	}
	if o.err != nil {
		fields = append(fields, zap.Error(o.err))
	}
	ce.Write(fields...)
	clear(fields) // drop the strings and errors the fields point to
	*fp = fields[:0]
	s.fields.Put(fp)
}

// status returns the service's part of a Status.
func (s *service) status() ServiceStatus {
	st := s.cur.Load()
	mode := string(st.cfg.Mode)
	if st.cfg.Exec != nil && !st.cfg.Exec.Accept {
		mode = "exec-wait"
	}
	ss := ServiceStatus{
		Name:           s.name,
		Mode:           mode,
		Listen:         []string{},
		Accepted:       s.accepted.Load(),
		Connected:      uint64(max(s.connected.Load(), 0)),
		Refused:        s.refused.Load(),
		BytesIn:        s.bytesIn.Load(),
		BytesOut:       s.bytesOut.Load(),
		RefusedReasons: s.reasons.snapshot(),
		Exits:          s.exits.snapshot(),
		Instances:      []InstanceStatus{},
	}
	for _, l := range s.listeners {
		ss.Listen = append(ss.Listen, l.bound)
	}
	s.insts.each(func(_ uint64, in *instance) {
		ss.Instances = append(ss.Instances, InstanceStatus{
			Name: in.name, Pid: int(in.pid.Load()), UID: int(in.uid.Load()), GID: int(in.gid.Load()),
			Remote: in.remote, Local: in.local, Started: in.started,
		})
	})
	sortInstances(ss.Instances)
	return ss
}

// stopTimeout is how long shutdown lets this service's connections run,
// and the longest a stop of one of its processes (an instance, or a
// backend started on demand) waits between SIGTERM and SIGKILL.
func (s *service) stopTimeout() time.Duration {
	cfg := s.cur.Load().cfg
	d := 5 * time.Second
	if ex := cfg.Exec; ex != nil && ex.StopTimeout > 0 {
		d = ex.StopTimeout
	}
	if p := cfg.Proxy; p != nil && p.Start != nil {
		d = max(d, p.Start.StopTimeout)
	}
	return d
}
