package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"syscall"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"go.uber.org/zap"

	"github.com/acceptd/acceptd/config"
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
}

func newProxyHandler(svc *config.Service, r *relay.Relayer, devNull int, log *zap.Logger) *proxyHandler {
	h := &proxyHandler{p: svc.Proxy, relayer: r}
	if st := svc.Proxy.Start; st != nil {
		h.backend = newBackendProc(svc.Name, st, devNull, log)
	}
	return h
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
	b, err := h.dial(ctx)
	if err != nil {
		c.Close()
		return outcome{refused: refusedConnect, err: fmt.Errorf("connect to %s: %w", h.p.Backend.Raw, err)}
	}
	if v := h.p.ProxyProtocol; v != "" {
		version := byte(1)
		if v == "v2" {
			version = 2
		}
		// The client as the service knows it: behind a load balancer
		// (accept_proxy_protocol) that is what its header said, not the
		// balancer's own address.
		src, dst := c.RemoteAddr(), c.LocalAddr()
		if p := &c.Peer; p.RemoteIP.IsValid() {
			src = net.TCPAddrFromAddrPort(netip.AddrPortFrom(p.RemoteIP, uint16(p.RemotePort)))
			dst = net.TCPAddrFromAddrPort(netip.AddrPortFrom(p.LocalIP, uint16(p.LocalPort)))
		}
		hdr := proxyproto.HeaderProxyFromAddrs(version, src, dst)
		if _, err := hdr.WriteTo(b); err != nil {
			c.Close()
			b.Close()
			return outcome{refused: refusedConnect, err: fmt.Errorf("send PROXY header: %w", err)}
		}
	}
	res := h.relayer.Relay(ctx, c.Conn, b, relay.Options{IdleTimeout: h.p.IdleTimeout})
	return outcome{in: res.In, out: res.Out, err: res.Err}
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
	if b.idle != nil {
		b.idle.Stop()
		b.idle = nil
	}
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
