package server

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/config"
	"github.com/acceptd/acceptd/internal/rawsock"
	"github.com/acceptd/acceptd/spawn"
)

// The per-connection spawn path is acceptd's hot path (see bench/). For an
// exec service on a stream socket, the accept loop takes connections with
// a raw blocking accept4 and starts the program on its own goroutine:
// the connection never becomes a net.Conn (no poller registration, no
// O_NONBLOCK to undo, no TCP_NODELAY that Go sets and inetd semantics
// must unset), and no goroutine is started before the fork. A goroutine
// per instance then waits for the child.

// fastExec reports whether connections on l for settings st take the raw
// path: exec services with accept = true on TCP or UNIX stream sockets.
func fastExec(st *settings, l *listener) bool {
	ex := st.cfg.Exec
	return ex != nil && ex.Accept && streamListener(l)
}

// fastProxy reports whether connections on l for settings st are
// accepted raw for the relay engine (see proxyHandler.engine): a proxy on
// a TCP or UNIX stream socket.
//
// With accept_proxy_protocol, both take the client's PROXY header off the
// raw socket when it is all there at accept (takeProxyHeader); one that
// is not becomes a net.Conn whose header is read on a goroutine of its
// own (service.handleProxied), and a proxy's is then detached to the
// engine (service.relayDetached).
func fastProxy(st *settings, l *listener) bool {
	h, ok := st.handler.(*proxyHandler)
	return ok && h.engine != nil && streamListener(l)
}

// rawPath reports whether connections on l for settings st are accepted
// as raw sockets: fast-path exec or fast-path proxy.
func rawPath(st *settings, l *listener) bool { return fastExec(st, l) || fastProxy(st, l) }

func streamListener(l *listener) bool {
	return l.ln != nil &&
		(l.addr.Kind == config.KindTCP || l.addr.Kind == config.KindUnix || l.addr.Kind == config.KindSystemd || l.addr.Kind == config.KindFD)
}

// acceptFlags are accept4's flags for settings st on the raw path: a
// blocking socket for a program's stdin, a non-blocking one for the relay
// engine.
func acceptFlags(st *settings) int {
	if st.cfg.Exec != nil {
		return unix.SOCK_CLOEXEC
	}
	return unix.SOCK_CLOEXEC | unix.SOCK_NONBLOCK
}

// acceptor is one accept loop's raw accept. Its results and the function
// that the watcher's Read runs are made once per loop: a closure made per
// call put four allocations on every connection.
type acceptor struct {
	l     *listener
	flags int
	nfd   int
	sa    syscall.Sockaddr
	err   error
	try   func(fd uintptr) bool
}

func (l *listener) newAcceptor() *acceptor {
	a := &acceptor{l: l}
	a.try = func(fd uintptr) bool {
		a.nfd, a.sa, a.err = rawsock.Accept4(int(fd), a.flags)
		return a.err != syscall.EAGAIN
	}
	return a
}

// accept accepts one connection as a close-on-exec socket with accept4
// flags (SOCK_NONBLOCK or not). It returns net.ErrClosed once the listener
// is closed.
//
// The accept4 runs inside the watcher's Read (on a duplicate of the
// listening descriptor, the same socket): when the backlog is empty, Read
// parks the loop in the poller until the next edge and tries again, with
// no readiness check of its own (waitReadable's poll costs a system call
// per wait, and the edge is enough here: a connection that arrives after
// the EAGAIN makes a new one). Read lets one loop at a time in; the
// others wait for it, which is what they would do in the kernel's accept
// anyway.
//
// accept4 is a raw system call (see internal/rawsock), and getsockname (in
// peerOf) the syscall package's: x/sys unix's versions ask
// getsockopt(SO_PROTOCOL) of every IPv4 and IPv6 address they decode (to
// tell L2TP sockets apart), two system calls per connection that a stream
// socket does not need.
func (a *acceptor) accept(flags int) (int, syscall.Sockaddr, error) {
	ra, err := a.l.rawAccess()
	if err != nil {
		return -1, nil, err
	}
	a.flags = flags
	for {
		if err := ra.watch.Read(a.try); err != nil {
			return -1, nil, net.ErrClosed
		}
		nfd, sa, aerr := a.nfd, a.sa, a.err
		a.sa, a.err = nil, nil
		switch {
		case aerr == nil:
			return nfd, sa, nil
		case errors.Is(aerr, unix.EINTR), errors.Is(aerr, unix.ECONNABORTED):
		default:
			return -1, nil, os.NewSyscallError("accept4", aerr)
		}
	}
}

// rawAccess is a listener's descriptor access for raw accepts: watch (see
// watcher), to accept on and to wait for the next connection on, and
// local, the local address of every connection it accepts when that is
// known from the listening socket (see fixedLocalOf).
type rawAccess struct {
	watch syscall.RawConn
	local netip.AddrPort
}

// fixedLocal is the local address every raw accepted connection on l
// has, when the listening socket tells it; zero when each must be asked.
func (l *listener) fixedLocal() netip.AddrPort {
	if ra := l.raw.Load(); ra != nil {
		return ra.local
	}
	return netip.AddrPort{}
}

// fixedLocalOf returns the local address every connection accepted on the
// TCP listening socket fd has: the one it is bound to, when that is one
// IP address and the socket is not transparent (IP_TRANSPARENT accepts
// connections to any address, and TPROXY sends them). A wildcard
// listener's connections each have their own, for getsockname per
// connection. A call fewer per connection on the raw path; the net
// package asks every accepted socket.
func fixedLocalOf(fd int) netip.AddrPort {
	bound, ok := rawsock.LocalAddrPort(fd)
	if !ok || bound.Addr().IsUnspecified() {
		return netip.AddrPort{}
	}
	// Either option, asked of either family, reads the socket's one
	// transparent flag; an error is a family that does not know the
	// option.
	for _, o := range [...][2]int{{unix.SOL_IP, unix.IP_TRANSPARENT}, {unix.SOL_IPV6, unix.IPV6_TRANSPARENT}} {
		if v, err := unix.GetsockoptInt(fd, o[0], o[1]); err == nil && v != 0 {
			return netip.AddrPort{}
		}
	}
	return bound
}

// rawAccess returns l's rawAccess, making it on the first call: the
// accept loops ask for it per connection, and share it without a lock.
// After the socket is closed its Read fails (net.ErrClosed), as it would
// if made again.
func (l *listener) rawAccess() (*rawAccess, error) {
	if ra := l.raw.Load(); ra != nil {
		return ra, nil
	}
	watch, err := l.watcher()
	if err != nil {
		return nil, err
	}
	ra := &rawAccess{watch: watch}
	watch.Control(func(fd uintptr) { ra.local = fixedLocalOf(int(fd)) })
	if !l.raw.CompareAndSwap(nil, ra) {
		ra = l.raw.Load() // another loop made it first; watcher is shared
	}
	return ra, nil
}

// peerOf fills p from a raw accepted socket and returns the remote and
// local addresses as logged.
func peerOf(fd int, sa syscall.Sockaddr, l *listener, p *spawn.Conn) (remote, local string) {
	p.PeerPID, p.PeerUID, p.PeerGID = -1, -1, -1
	switch a := sa.(type) {
	case *syscall.SockaddrInet4, *syscall.SockaddrInet6:
		p.Proto = "TCP"
		r := sockaddrPort(a)
		p.RemoteIP, p.RemotePort = r.Addr(), int(r.Port())
		lp := l.fixedLocal()
		if !lp.IsValid() {
			lp, _ = rawsock.LocalAddrPort(fd)
		}
		p.LocalIP, p.LocalPort = lp.Addr(), int(lp.Port())
		return netip.AddrPortFrom(p.RemoteIP, uint16(p.RemotePort)).String(),
			netip.AddrPortFrom(p.LocalIP, uint16(p.LocalPort)).String()
	case *syscall.SockaddrUnix:
		p.Proto = "UNIX"
		if a.Name != "" && a.Name != "@" {
			p.RemotePath = a.Name
		}
		if cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			p.PeerPID, p.PeerUID, p.PeerGID = int(cred.Pid), int(cred.Uid), int(cred.Gid)
		}
		remote = p.RemotePath
		if remote == "" && p.PeerPID >= 0 {
			remote = "pid " + strconv.Itoa(p.PeerPID) + " uid " + strconv.Itoa(p.PeerUID)
		}
		return remote, l.bound
	}
	return "", l.bound
}

func sockaddrPort(sa syscall.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}

// dispatchRaw applies allow/deny and limits to a raw accepted socket, then
// starts the service's program on it, or hands it to the relay engine, all
// on the accept loop's goroutine.
func (s *service) dispatchRaw(ctx, hctx context.Context, st *settings, l *listener, fd int, sa syscall.Sockaddr) {
	now := time.Now()
	var remoteIP netip.Addr
	if _, ok := sa.(*syscall.SockaddrUnix); !ok {
		remoteIP = sockaddrPort(sa).Addr()
		if st.cfg.Socket.KeepAlive {
			rawsock.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
		}
		if st.cfg.Socket.NoDelay {
			rawsock.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		}
	}
	var real *realPeer
	if st.cfg.AcceptProxyProtocol {
		var ok bool
		if remoteIP, real, ok = s.rawProxied(hctx, st, fd, sa, remoteIP); !ok {
			return
		}
	}
	seq, src, why := s.take(ctx, st, remoteIP)
	if why != "" {
		s.refuseRaw(fd, sa, why)
		return
	}

	conn := &Conn{Seq: seq, Accepted: now}
	conn.Remote, conn.Local = peerOf(fd, sa, l, &conn.Peer)
	conn.setReal(real)
	conn.Instance = instanceName(s.name, seq, &conn.Peer, conn.Local, conn.Remote)
	if ph, ok := st.handler.(*proxyHandler); ok {
		s.relay(hctx, st, ph, fd, conn, src)
		return
	}
	in := s.begin(conn)
	h := st.handler.(*execHandler)
	r, err := h.startRetry(hctx, s.log, &conn.Peer, conn.Instance, fd, true)
	// The child has its copies; from now on its close is what the client
	// sees.
	rawsock.Close(fd)
	if err != nil {
		why := refusedSpawn
		if errors.Is(err, errNoDynamicUser) {
			why = refusedDynUser
		}
		s.end(st, conn, in, outcome{refused: why, err: err}, src)
		s.conns.Done()
		return
	}
	if h.obs != nil {
		h.obs.SpawnLatency(h.service, time.Since(now))
	}
	h.noteProc(in, r)
	go s.waitInstance(hctx, st, h, r, conn, in, src)
}

// dispatchFD serves a raw accepted socket the net package's way: as a
// net.Conn, through dispatch.
func (s *service) dispatchFD(hctx context.Context, fd int) {
	f := os.NewFile(uintptr(fd), "accepted")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		s.log.Warn("accepted socket unusable", zap.Error(err))
		return
	}
	s.dispatch(hctx, c)
}

// rawProxied is accept_proxy_protocol for a raw accepted socket from
// remoteIP: the header is taken off at once when it is all there, and the
// client it names is returned (real is nil for a LOCAL header or one
// without IP addresses, when the socket's own peer stands). ok is false
// when the connection is no longer the caller's: refused (not a trusted
// proxy, a bad header), or handed to the net package's path to wait for
// a header still on its way.
func (s *service) rawProxied(hctx context.Context, st *settings, fd int, sa syscall.Sockaddr, remoteIP netip.Addr) (_ netip.Addr, real *realPeer, ok bool) {
	if untrustedProxy(st, remoteIP) {
		s.refuseRaw(fd, sa, refusedProxyHdr)
		return remoteIP, nil, false
	}
	hdr, err := takeProxyHeader(fd)
	if err != nil {
		// As handleProxied: closed without a reset.
		rawsock.Close(fd)
		remote := ""
		if remoteIP.IsValid() {
			remote = sockaddrPort(sa).String()
		}
		s.headerRefused(remote, err)
		return remoteIP, nil, false
	}
	if hdr == nil {
		s.dispatchFD(hctx, fd)
		return remoteIP, nil, false
	}
	remoteIP, real = realPeerOf(hdr, remoteIP)
	return remoteIP, real, true
}

// relay registers conn's instance and relays its raw socket fd on ph's
// engine; the connection ends (counters, log line, s.conns) when the
// relay does.
func (s *service) relay(ctx context.Context, st *settings, ph *proxyHandler, fd int, conn *Conn, src netip.Prefix) {
	in := s.begin(conn)
	ph.relayRaw(ctx, fd, &conn.Peer, func(o outcome) {
		s.end(st, conn, in, o, src)
		s.conns.Done()
	})
}

// waitInstance waits for the program serving conn and ends the connection.
func (s *service) waitInstance(hctx context.Context, st *settings, h *execHandler, r running, conn *Conn, in *instance, src netip.Prefix) {
	defer s.conns.Done()
	o := h.finish(hctx, r, conn.Instance)
	s.end(st, conn, in, o, src)
}

// refuseRaw closes a raw accepted socket unserved (with a reset for TCP,
// so the client learns at once) and counts it.
func (s *service) refuseRaw(fd int, sa syscall.Sockaddr, why refusal) {
	if _, ok := sa.(*syscall.SockaddrUnix); !ok {
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	if ce := s.log.Check(zap.DebugLevel, "connection refused"); ce != nil {
		remote := ""
		if _, ok := sa.(*syscall.SockaddrUnix); !ok {
			remote = sockaddrPort(sa).String()
		}
		ce.Write(zap.String("remote", remote), zap.String("reason", string(why)))
	}
	rawsock.Close(fd)
	s.refused.Add(1)
	s.reasons.add(string(why))
}
