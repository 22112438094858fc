package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/config"
	"github.com/acceptd/acceptd/internal/rawsock"
	"github.com/acceptd/acceptd/server/relay"
	"github.com/acceptd/acceptd/spawn"
)

// proxyHandler relays each connection to a backend (Accept=no with
// systemd-socket-proxyd, or simpletcpunixrelay).
type proxyHandler struct {
	p       *config.Proxy
	relayer *relay.Relayer
	// backend starts the backend on demand; nil without a start block.
	backend *backendProc

	// engine relays the connections of a plain proxy (see rawProxy);
	// nil when the service needs what only Relay does.
	engine *relay.Engine
	// backendAddr is the backend's address for a raw connect.
	backendAddr *rawsock.Addr
}

func newProxyHandler(svc *config.Service, r *relay.Relayer, e *relay.Engine, devNull int, log *zap.Logger) *proxyHandler {
	h := &proxyHandler{p: svc.Proxy, relayer: r}
	if st := svc.Proxy.Start; st != nil {
		h.backend = newBackendProc(svc.Name, st, devNull, log)
	}
	p := svc.Proxy
	if a := backendAddr(p.Backend); a != nil && e != nil {
		h.engine, h.backendAddr = e, a
	}
	return h
}

// backendAddr is a backend's address for a raw connect(2): an IP literal
// with a port, or a UNIX path (or abstract name); nil for the others.
// Host names, and IPv6 zones, are left to the net package's dialer.
func backendAddr(a config.Address) *rawsock.Addr {
	var sa unix.Sockaddr
	switch a.Kind {
	case config.KindTCP:
		ip, err := netip.ParseAddr(a.Host)
		switch {
		case err != nil || ip.Zone() != "":
			return nil
		case ip.Is4() || ip.Is4In6() && a.Network == "tcp4":
			sa = &unix.SockaddrInet4{Port: a.Port, Addr: ip.Unmap().As4()}
		case a.Network == "tcp4":
			return nil
		default:
			sa = &unix.SockaddrInet6{Port: a.Port, Addr: ip.As16()}
		}
	case config.KindUnix:
		sa = &unix.SockaddrUnix{Name: a.Path}
	default:
		return nil
	}
	ra, err := rawsock.NewAddr(sa)
	if err != nil {
		return nil
	}
	return ra
}

// connectRaw starts a non-blocking connect to the backend. connecting is
// set when it is in progress (TCP); a UNIX connect completes or fails at
// once.
func (h *proxyHandler) connectRaw() (fd int, connecting bool, err error) {
	family := h.backendAddr.Family()
	fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, false, os.NewSyscallError("socket", err)
	}
	if family != unix.AF_UNIX {
		// As Go's dialer does for the relay's other path: a relayed
		// request must not wait for the ACK of the previous segment.
		_ = rawsock.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	for {
		err = rawsock.Connect(fd, h.backendAddr)
		switch err {
		case nil:
			return fd, false, nil
		case unix.EINPROGRESS:
			return fd, true, nil
		case unix.EINTR:
			continue
		}
		rawsock.Close(fd)
		return -1, false, os.NewSyscallError("connect", err)
	}
}

// relayRaw relays a raw accepted client socket (non-blocking), whose
// client is peer, on the engine and calls finish once, when the
// connection has ended. What must wait runs on a goroutine of its own
// that ends when the relay starts: starting the service's on-demand
// backend, or waiting for it. A refused connect within connect_retry is
// tried again from a timer (rawRelay), so that no connection holds a
// goroutine while it is relayed.
func (h *proxyHandler) relayRaw(ctx context.Context, cfd int, peer *spawn.Conn, finish func(outcome)) {
	var hdr []byte
	if h.p.ProxyProtocol != "" {
		var err error
		if hdr, err = h.rawProxyHeader(cfd, peer); err != nil {
			// As the other path does: no relay without the header.
			unix.Close(cfd)
			finish(outcome{refused: refusedConnect, err: fmt.Errorf("PROXY header: %w", err)})
			return
		}
	}
	if err := h.engine.Start(); err != nil {
		// No loop could be made (out of fds): the other path, before
		// a connect the backend would see dropped.
		h.relaySlow(ctx, cfd, finish)
		return
	}
	r := &rawRelay{h: h, ctx: ctx, cfd: cfd, hdr: hdr, finish: finish}
	if h.backend != nil {
		if !h.backend.tryAcquire() {
			// Not running, or on its way out: start it or wait for
			// it, which the accept loop must not do.
			go r.startBackend()
			return
		}
		r.finish = h.releasing(finish)
	}
	r.connect()
}

// rawProxyHeader is the PROXY header (proxy_protocol) for a raw client
// socket: the client's address as peer says, or, for a UNIX client, the
// socket's own addresses, as the net package would report them.
func (h *proxyHandler) rawProxyHeader(cfd int, peer *spawn.Conn) ([]byte, error) {
	if peer.RemoteIP.IsValid() {
		return h.proxyHeader(tcpAddr(peer.RemoteIP, peer.RemotePort), tcpAddr(peer.LocalIP, peer.LocalPort))
	}
	lsa, err := unix.Getsockname(cfd)
	if err != nil {
		return nil, os.NewSyscallError("getsockname", err)
	}
	rsa, err := unix.Getpeername(cfd)
	if err != nil {
		return nil, os.NewSyscallError("getpeername", err)
	}
	return h.proxyHeader(unixAddr(rsa), unixAddr(lsa))
}

// unixAddr is sa as net.UnixConn's RemoteAddr and LocalAddr give it.
func unixAddr(sa unix.Sockaddr) net.Addr {
	name := ""
	if u, ok := sa.(*unix.SockaddrUnix); ok {
		name = u.Name
	}
	return &net.UnixAddr{Name: name, Net: "unix"}
}

// forwardSize bounds the client bytes passed on at connect (Job.Forward):
// a client's first flight (a request, a TLS ClientHello) usually fits; the
// rest is spliced by the engine. It is on the connecting goroutine's stack.
const forwardSize = 4096

// rawRelay is one raw client socket on its way to the engine: what a
// connect attempt needs, and connect_retry's state between attempts.
type rawRelay struct {
	// job is the engine's while it relays; once its Done has been called
	// the engine holds nothing of it, and a retry fills it in anew (one
	// allocation per connection for both).
	job    relay.Job
	h      *proxyHandler
	ctx    context.Context
	cfd    int
	hdr    []byte
	finish func(outcome)
	// deadline ends the retries; zero until the first refused connect.
	deadline time.Time
	delay    time.Duration
}

// startBackend starts the on-demand backend (or waits for one on its way
// out), then connects.
func (r *rawRelay) startBackend() {
	if err := r.h.backend.acquire(); err != nil {
		unix.Close(r.cfd)
		r.finish(outcome{refused: refusedConnect, err: err})
		return
	}
	r.finish = r.h.releasing(r.finish)
	r.connect()
}

// connect starts one connect to the backend and hands the relay to the
// engine; a failure, now or reported by the engine, goes to failed.
func (r *rawRelay) connect() {
	h := r.h
	if !r.deadline.IsZero() && r.ctx.Err() != nil {
		// A retry that came up after shutdown began: dial's wait ends
		// there too.
		unix.Close(r.cfd)
		r.finish(outcome{refused: refusedConnect, err: fmt.Errorf("connect to %s: %w", h.p.Backend.Raw, r.ctx.Err())})
		return
	}
	bfd, connecting, err := h.connectRaw()
	if err != nil {
		r.failed(err)
		return
	}
	r.job = relay.Job{Client: r.cfd, Backend: bfd, Connecting: connecting, ConnectTimeout: h.p.ConnectTimeout, IdleTimeout: h.p.IdleTimeout, Preamble: r.hdr, Done: r.done}
	var first [forwardSize]byte
	r.job.Forward(first[:])
	if err := h.engine.Add(&r.job); err != nil {
		// Closed: only a shutdown does that, after the accept loops
		// have stopped; the client is not left hanging if it does.
		unix.Close(bfd)
		unix.Close(r.cfd)
		r.finish(outcome{refused: refusedConnect, err: err})
	}
}

func (r *rawRelay) done(res relay.Result) {
	if res.ConnectFailed {
		r.failed(res.Err)
		return
	}
	r.finish(outcome{in: res.In, out: res.Out, err: res.Err})
}

// failed ends a relay whose connect failed, or tries again later when
// the failure is one connect_retry covers: as dial does, for up to
// connect_retry (at least connect_timeout for a backend acceptd starts,
// which may still be on its way to listening), 5 ms apart at first and
// doubling up to 250 ms.
func (r *rawRelay) failed(err error) {
	h := r.h
	retry := h.p.ConnectRetry
	if h.backend != nil {
		retry = max(retry, h.p.ConnectTimeout)
	}
	if retry > 0 && retryable(err) && r.ctx.Err() == nil {
		now := time.Now()
		if r.deadline.IsZero() {
			r.deadline, r.delay = now.Add(retry), 5*time.Millisecond
		}
		if d := r.delay; !now.Add(d).After(r.deadline) {
			// r is the timer's from here on.
			r.delay = min(2*d, 250*time.Millisecond)
			time.AfterFunc(d, r.connect)
			return
		}
	}
	unix.Close(r.cfd)
	r.finish(outcome{refused: refusedConnect, err: fmt.Errorf("connect to %s: %w", h.p.Backend.Raw, err)})
}

// releasing is finish that first gives back the relay's count on the
// on-demand backend.
func (h *proxyHandler) releasing(finish func(outcome)) func(outcome) {
	return func(o outcome) {
		h.backend.release()
		finish(o)
	}
}

// relaySlow relays a raw client socket on a goroutine, the way Handle
// does (dial, Relay), for when the engine cannot have it.
func (h *proxyHandler) relaySlow(ctx context.Context, cfd int, finish func(outcome)) {
	go func() {
		f := os.NewFile(uintptr(cfd), "client")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			finish(outcome{err: fmt.Errorf("client socket: %w", err)})
			return
		}
		finish(h.Handle(ctx, &Conn{Conn: c}, nil))
	}()
}

// retryable reports whether a failed connect may succeed later: nobody
// listening yet (a backend that is still starting), or its socket file not
// made yet.
func retryable(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, syscall.EAGAIN)
}

// dial connects to the backend, retrying a refused connect for up to
// connect_retry (or, when acceptd starts the backend itself, for at least
// connect_timeout, so that the first client waits for the start).
func (h *proxyHandler) dial(ctx context.Context) (net.Conn, error) {
	retry := h.p.ConnectRetry
	if h.backend != nil {
		retry = max(retry, h.p.ConnectTimeout)
	}
	deadline := time.Now().Add(retry)
	// KeepAlive -1: Go would turn TCP keepalive on for the backend
	// connection (four setsockopt calls per connection); neither
	// systemd-socket-proxyd nor the backend's own clients do that.
	d := net.Dialer{Timeout: h.p.ConnectTimeout, KeepAlive: -1}
	delay := 5 * time.Millisecond
	for {
		c, err := d.DialContext(ctx, h.p.Backend.Network, h.p.Backend.ListenAddr())
		if err == nil {
			return c, nil
		}
		if !retryable(err) || time.Now().Add(delay).After(deadline) {
			return nil, err
		}
		if !sleepCtx(ctx, delay) {
			return nil, ctx.Err()
		}
		delay = min(2*delay, 250*time.Millisecond)
	}
}

func (h *proxyHandler) Handle(ctx context.Context, c *Conn, in *instance) outcome {
	if h.backend != nil {
		if err := h.backend.acquire(); err != nil {
			c.Close()
			return outcome{refused: refusedConnect, err: err}
		}
		defer h.backend.release()
	}
	return h.relay(ctx, c.Conn, &c.Peer)
}

// relay dials the backend and relays c to it through the Relayer. peer is
// the client as the service knows it, for a PROXY header.
func (h *proxyHandler) relay(ctx context.Context, c net.Conn, peer *spawn.Conn) outcome {
	b, err := h.dial(ctx)
	if err != nil {
		c.Close()
		return outcome{refused: refusedConnect, err: fmt.Errorf("connect to %s: %w", h.p.Backend.Raw, err)}
	}
	if h.p.ProxyProtocol != "" {
		// The client as the service knows it: behind a load balancer
		// (accept_proxy_protocol) that is what its header said, not the
		// balancer's own address.
		src, dst := c.RemoteAddr(), c.LocalAddr()
		if p := peer; p != nil && p.RemoteIP.IsValid() {
			src, dst = tcpAddr(p.RemoteIP, p.RemotePort), tcpAddr(p.LocalIP, p.LocalPort)
		}
		hdr, err := h.proxyHeader(src, dst)
		if err == nil {
			_, err = b.Write(hdr)
		}
		if err != nil {
			c.Close()
			b.Close()
			return outcome{refused: refusedConnect, err: fmt.Errorf("send PROXY header: %w", err)}
		}
	}
	res := h.relayer.Relay(ctx, c, b, relay.Options{IdleTimeout: h.p.IdleTimeout})
	return outcome{in: res.In, out: res.Out, err: res.Err}
}

// proxyHeader is the PROXY protocol header (proxy_protocol) naming src as
// the client and dst as the address it connected to.
func (h *proxyHandler) proxyHeader(src, dst net.Addr) ([]byte, error) {
	version := byte(1)
	if h.p.ProxyProtocol == "v2" {
		version = 2
	}
	return proxyproto.HeaderProxyFromAddrs(version, src, dst).Format()
}

func tcpAddr(ip netip.Addr, port int) *net.TCPAddr {
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port)))
}

// close stops an on-demand backend once its relays have ended.
func (h *proxyHandler) close() {
	if h.backend != nil {
		h.backend.close()
	}
}

// backendProc is a backend that acceptd starts on the first connection and
// stops after stop_when_idle without relayed connections: the three units
// of systemd's socket-proxyd example (socket, proxy, backend) in one block.
type backendProc struct {
	service string
	st      *config.ProxyStart
	devNull int
	log     *zap.Logger

	mu   sync.Mutex
	proc *spawn.Process
	// stopped is proc once stop_when_idle has stopped it: until it is
	// reaped it may still hold the backend's socket, and the next
	// connection waits for it rather than dial a backend on its way out.
	stopped *spawn.Process
	active  int
	idle    *time.Timer
	closed  bool
	// waits ends when the watcher goroutines of started processes end.
	waits sync.WaitGroup
}

func newBackendProc(service string, st *config.ProxyStart, devNull int, log *zap.Logger) *backendProc {
	return &backendProc{service: service, st: st, devNull: devNull, log: log}
}

// acquire counts one relay and starts the backend if it is not running.
func (b *backendProc) acquire() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("backend is stopping")
	}
	b.keepLocked()
	for b.proc != nil && b.proc == b.stopped {
		p := b.proc
		b.mu.Unlock()
		<-p.Done()
		b.mu.Lock()
		if b.proc == p {
			b.proc = nil // watch may not have had the lock yet
		}
		if b.closed {
			return errors.New("backend is stopping")
		}
	}
	if b.proc == nil {
		if err := b.startLocked(); err != nil {
			return err
		}
	}
	b.active++
	return nil
}

// tryAcquire is acquire for the accept loop, which must not wait: it
// counts one relay only when the backend is running and not being stopped,
// and reports whether it did.
func (b *backendProc) tryAcquire() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.proc == nil || b.proc == b.stopped {
		return false
	}
	b.keepLocked()
	b.active++
	return true
}

// keepLocked cancels a pending stop_when_idle: a relay is coming.
func (b *backendProc) keepLocked() {
	if b.idle != nil {
		b.idle.Stop()
		b.idle = nil
	}
}

func (b *backendProc) startLocked() error {
	env := []string{"PATH=" + spawn.DefaultPath}
	keys := make([]string, 0, len(b.st.Environment))
	for k := range b.st.Environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+b.st.Environment[k])
	}
	env = spawn.MergeEnv(env)
	sp := &spawn.Spec{
		Path:        b.st.Command[0],
		Args:        b.st.Command,
		Env:         env,
		Files:       []int{b.devNull, b.devNull, 2},
		Credential:  credential(b.st.User, b.st.Group),
		StopTimeout: b.st.StopTimeout,
		Umask:       -1,
	}
	p, err := spawn.Start(sp)
	if err != nil {
		return fmt.Errorf("start backend: %w", err)
	}
	b.proc = p
	b.log.Info("backend started", zap.Int("pid", p.Pid()))
	b.waits.Add(1)
	go b.watch(p)
	return nil
}

// watch reaps a backend process and forgets it, so that the next
// connection starts a new one.
func (b *backendProc) watch(p *spawn.Process) {
	defer b.waits.Done()
	res, err := p.Wait()
	b.mu.Lock()
	if b.proc == p {
		b.proc = nil
	}
	b.mu.Unlock()
	if err != nil {
		b.log.Warn("backend wait failed", zap.Int("pid", p.Pid()), zap.Error(err))
		return
	}
	b.log.Info("backend exited", zap.Int("pid", p.Pid()), zap.String("exit", res.String()))
}

// release ends one relay; the last one arms stop_when_idle.
func (b *backendProc) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.active--
	if b.active > 0 || b.proc == nil {
		return
	}
	if b.closed {
		b.proc.Stop()
		return
	}
	if d := b.st.StopWhenIdle; d > 0 {
		p := b.proc
		b.idle = time.AfterFunc(d, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.proc == p && b.active == 0 {
				b.log.Info("stopping idle backend", zap.Int("pid", p.Pid()))
				b.stopped = p
				p.Stop()
			}
		})
	}
}

// close stops the backend now if idle, else when its last relay ends, and
// waits for it only in wait.
func (b *backendProc) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.idle != nil {
		b.idle.Stop()
	}
	if b.proc != nil && b.active == 0 {
		b.proc.Stop()
	}
}

// wait waits for every started backend process to be reaped.
func (b *backendProc) wait() { b.waits.Wait() }
