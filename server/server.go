package server

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"
	"go.uber.org/zap"

	"github.com/acceptd/acceptd/config"
	"github.com/acceptd/acceptd/server/handoff"
	"github.com/acceptd/acceptd/server/relay"
)

// Observer receives hot-path observations for metrics. Its methods must be
// cheap and safe for concurrent use.
type Observer interface {
	// SpawnLatency is the time from accept to the child's start (its
	// exec follows without acceptd waiting for it; see
	// spawn.Spec.NoExecWait).
	SpawnLatency(service string, d time.Duration)
	// ConnectionEnded is called once per served connection.
	ConnectionEnded(service string, d time.Duration)
	// Forget is called when a service removed by a reload has no
	// connection left (seen at that reload or a later one) and no service
	// of its name came back: its series can go.
	Forget(service string)
}

// Options configures a Server. Zero values are documented per field.
type Options struct {
	// Log receives everything the server logs; nil logs nothing.
	Log *zap.Logger
	// Observer, if not nil, is told about spawns and connection ends.
	Observer Observer
	// Listen opens one listening socket; nil binds a fresh socket. Socket
	// activation replaces it with one that takes inherited sockets first.
	// It may return several sockets for one address (systemd:NAME when
	// systemd passes several sockets under one name).
	Listen func(ctx context.Context, a config.Address, opt config.Socket) ([]*Listener, error)
	// DynamicUIDDir holds the lock files of dynamic users; "" is
	// /run/acceptd/dynamic-uid, shared by every acceptd on the host.
	DynamicUIDDir string
	// NoCgroups keeps instances out of per-instance cgroups even where
	// cgroup v2 is writable (process groups only).
	NoCgroups bool
}

// Listener is an opened listening socket, as returned by Options.Listen.
type Listener = listener

// Server runs the services of one configuration. Create it with New, which
// binds every socket; then Run it.
type Server struct {
	log     *zap.Logger
	opts    Options
	devNull *os.File
	// relayer owns the splice pipe pool of every proxy service.
	relayer *relay.Relayer
	// engine relays the connections of plain proxy services.
	engine *relay.Engine
	// sender is the socket every handoff service sends from.
	sender *handoff.Sender
	// sandbox holds the dynamic UIDs and cgroups of exec instances.
	sandbox *sandbox

	// reloadMu serialises Apply: two reloads never interleave.
	reloadMu sync.Mutex
	// mu guards the tables below; Status takes it for reading.
	mu        sync.RWMutex
	cfg       *config.Config
	services  []*service
	byName    map[string]*service
	listeners map[string]*listener
	// draining holds services removed by a reload whose connections
	// have not all ended; shutdown still waits for them.
	draining []*service

	// Set when Run starts; reloads start accept loops under them.
	running atomic.Bool
	actx    context.Context
	hctx    context.Context
	loops   sync.WaitGroup
	idle    *idleTracker
}

// New checks that every service can run and binds every listening socket
// of cfg. If any socket cannot be bound it closes the ones it opened and
// returns an error naming the service, the address and its place in the
// configuration file: nothing stays bound (see CONTRACT: Lifecycle).
func New(cfg *config.Config, opts Options) (*Server, error) {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Listen == nil {
		opts.Listen = func(ctx context.Context, a config.Address, opt config.Socket) ([]*Listener, error) {
			l, err := listenSocket(ctx, a, opt)
			if err != nil {
				return nil, err
			}
			return []*Listener{l}, nil
		}
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	sender, err := handoff.NewSender()
	if err != nil {
		devNull.Close()
		return nil, err
	}
	sb, err := newSandbox(cfg, opts, opts.Log)
	if err != nil {
		devNull.Close()
		sender.Close()
		return nil, err
	}
	s := &Server{
		sandbox:   sb,
		sender:    sender,
		log:       opts.Log,
		opts:      opts,
		devNull:   devNull,
		byName:    map[string]*service{},
		listeners: map[string]*listener{},
		idle:      newIdleTracker(),
		relayer:   relay.New(),
		engine:    relay.NewEngine(),
	}
	// Handlers get hctx; until Run replaces it, nothing is accepted.
	s.actx, s.hctx = context.Background(), context.Background()
	if _, err := s.apply(cfg); err != nil {
		devNull.Close()
		s.relayer.Close()
		s.engine.Close()
		s.sender.Close()
		s.sandbox.close(0)
		return nil, err
	}
	return s, nil
}

// where formats a configuration range for an error message.
func where(r hcl.Range) string {
	if r.Filename == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d,%d: ", r.Filename, r.Start.Line, r.Start.Column)
}

// apply makes cfg the running configuration: it opens new sockets before
// closing old ones, and changes nothing if any step fails.
func (s *Server) apply(cfg *config.Config) (ReloadResult, error) {
	var res ReloadResult

	// 1. Open every socket that is not open yet, before touching anything.
	opened := map[string]*listener{}
	want := map[string]*config.Service{}
	closeOpened := func() {
		for _, l := range opened {
			l.close()
		}
	}
	for _, sc := range cfg.Services {
		for i, la := range sc.Listen {
			key := listenKey(sc, i)
			if keys := s.keysOf(key, nil); len(keys) > 0 {
				for _, k := range keys {
					want[k] = sc
				}
				continue
			}
			if _, ok := opened[key]; ok {
				continue
			}
			ls, err := s.opts.Listen(context.Background(), la.Address, sc.Socket)
			if err != nil {
				closeOpened()
				return res, fmt.Errorf("%sbind service %q: %w", where(la.Range), sc.Name, err)
			}
			for j, l := range ls {
				l.key = extraKey(key, j)
				l.done = make(chan struct{})
				opened[l.key] = l
				want[l.key] = sc
			}
		}
	}

	// 2. Build the new settings for every service; this cannot fail once
	// the configuration is valid, but a mode this build cannot run is
	// reported before anything changes.
	newSettings := map[string]*settings{}
	for _, sc := range cfg.Services {
		old := s.byName[sc.Name]
		if old != nil && sameService(old.cur.Load().cfg, sc) {
			continue
		}
		st, err := s.newSettings(sc)
		if err != nil {
			closeOpened()
			return res, fmt.Errorf("%sservice %q: %w", where(sc.Range), sc.Name, err)
		}
		newSettings[sc.Name] = st
	}

	// 3. Commit.
	s.mu.Lock()
	services := make([]*service, 0, len(cfg.Services))
	byName := make(map[string]*service, len(cfg.Services))
	for _, sc := range cfg.Services {
		svc := s.byName[sc.Name]
		st := newSettings[sc.Name]
		switch {
		case svc == nil:
			svc = s.newService(sc.Name)
			svc.cur.Store(st)
			svc.slots.configure(sc)
			res.Added = append(res.Added, sc.Name)
		case st != nil:
			closeSettings(svc.cur.Swap(st))
			svc.slots.configure(sc)
			res.Changed = append(res.Changed, sc.Name)
		default:
			res.Unchanged = append(res.Unchanged, sc.Name)
		}
		svc.listeners = svc.listeners[:0]
		services = append(services, svc)
		byName[sc.Name] = svc
	}
	for name, svc := range s.byName {
		if byName[name] == nil {
			closeSettings(svc.cur.Load())
			res.Removed = append(res.Removed, name)
			svc.listeners = nil
			s.draining = append(s.draining, svc)
		}
	}
	var toClose []*listener
	for key, l := range s.listeners {
		if want[key] == nil {
			toClose = append(toClose, l)
			delete(s.listeners, key)
		}
	}
	var toStart []*listener
	for key, l := range opened {
		s.listeners[key] = l
		toStart = append(toStart, l)
	}
	for _, sc := range cfg.Services {
		svc := byName[sc.Name]
		for i := range sc.Listen {
			for _, k := range s.keysOf(listenKey(sc, i), nil) {
				l := s.listeners[k]
				l.svc.Store(svc)
				svc.listeners = append(svc.listeners, l)
			}
		}
	}
	s.services, s.byName, s.cfg = services, byName, cfg
	s.mu.Unlock()
	s.sandbox.setRange(cfg.DynamicUsers)

	for _, l := range toClose {
		l.close()
		if s.running.Load() {
			<-l.done
		}
	}
	if s.running.Load() {
		for _, l := range toStart {
			s.startLoop(l)
		}
	}
	s.pruneDraining()
	sort.Strings(res.Removed)
	return res, nil
}

// listenKey identifies the socket of a service's i-th listen address
// across reloads. Port 0 asks the kernel for a fresh port each time, so
// such addresses are told apart by service and position.
func listenKey(sc *config.Service, i int) string {
	la := sc.Listen[i]
	if (la.Kind == config.KindTCP || la.Kind == config.KindUDP) && la.Port == 0 {
		return fmt.Sprintf("%s %s#%d", la.Key(), sc.Name, i)
	}
	return la.Key()
}

// extraKey names the j-th socket of one listen address: an address may
// stand for several sockets (systemd:NAME).
func extraKey(key string, j int) string {
	if j == 0 {
		return key
	}
	return key + "#" + strconv.Itoa(j)
}

// keysOf returns the keys in s.listeners of every socket of the listen
// address key, appended to dst.
func (s *Server) keysOf(key string, dst []string) []string {
	for j := 0; ; j++ {
		k := extraKey(key, j)
		if _, ok := s.listeners[k]; !ok {
			return dst
		}
		dst = append(dst, k)
	}
}

// sameService reports whether two declarations of a service are equal but
// for where they stand in the file.
func sameService(a, b *config.Service) bool {
	strip := func(s *config.Service) config.Service {
		c := *s
		c.Range = hcl.Range{}
		c.Listen = slices.Clone(c.Listen)
		for i := range c.Listen {
			c.Listen[i].Range = hcl.Range{}
			c.Listen[i].Raw = ""
		}
		return c
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

func (s *Server) newService(name string) *service {
	return &service{
		name:  name,
		log:   s.log.With(zap.String("service", name)),
		obs:   s.opts.Observer,
		slots: newSlots(),
	}
}

// newSettings builds the handler and limits of a service declaration.
func (s *Server) newSettings(sc *config.Service) (*settings, error) {
	st := &settings{cfg: sc, acl: acl{allow: sc.Allow, deny: sc.Deny}}
	if sc.RateLimit != nil {
		st.rate = &rateLimiter{n: sc.RateLimit.Connections, interval: sc.RateLimit.Interval}
	}
	log := s.log.With(zap.String("service", sc.Name))
	switch sc.Mode {
	case config.ModeExec:
		st.handler = newExecHandler(sc, int(s.devNull.Fd()), log, s.opts.Observer, s.sandbox)
	case config.ModeBuiltin:
		st.handler = &builtinHandler{kind: sc.Builtin, now: time.Now}
	case config.ModeProxy:
		st.handler = newProxyHandler(sc, s.relayer, s.engine, int(s.devNull.Fd()), log)
	case config.ModeHandoff:
		st.handler = &handoffHandler{h: sc.Handoff, sender: s.sender}
	default:
		panic(fmt.Sprintf("unhandled mode %q", sc.Mode))
	}
	return st, nil
}

func (s *Server) startLoop(l *listener) {
	// Exec services wait for readability on a duplicate of the socket
	// (see watcher); making it now keeps acceptd's fd count flat from the
	// first connection on.
	if st := l.svc.Load().cur.Load(); st.cfg.Exec != nil || rawPath(st, l) {
		if _, err := l.watcher(); err != nil {
			s.log.Warn("socket watcher", zap.String("listen", l.bound), zap.Error(err))
		}
	}
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		defer close(l.done)
		serve(s.actx, s.hctx, l, s.idle)
	}()
}

// pruneDraining forgets removed services whose connections have all
// ended, and tells the Observer about those whose name is gone.
func (s *Server) pruneDraining() {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := s.draining[:0]
	for _, svc := range s.draining {
		switch {
		case svc.connected.Load() > 0:
			keep = append(keep, svc)
		case s.opts.Observer != nil && s.byName[svc.name] == nil:
			s.opts.Observer.Forget(svc.name)
		}
	}
	clear(s.draining[len(keep):])
	s.draining = keep
}

// Apply makes cfg the running configuration (a reload): unchanged services
// keep their sockets and instances, changed services take the new settings
// for new connections, removed services close their sockets and let their
// instances finish. On error nothing changes and the old configuration
// keeps running.
func (s *Server) Apply(cfg *config.Config) (ReloadResult, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	return s.apply(cfg)
}

// Run accepts connections until ctx is done, then shuts down in order:
// close every listener, wait for the accept loops, let connections finish
// for up to each service's stop_timeout, stop what remains (process groups
// get SIGTERM, then SIGKILL), and remove the UNIX socket files acceptd
// created. It returns nil after a clean stop.
func (s *Server) Run(ctx context.Context) error {
	actx, stopAccept := context.WithCancel(ctx)
	defer stopAccept()
	hctx, stopHandlers := context.WithCancel(context.Background())
	defer stopHandlers()
	// The engine's relays end with the handlers, as Relay's do.
	stopEngine := context.AfterFunc(hctx, func() { s.engine.AbortAll(context.Canceled) })
	defer stopEngine()

	s.reloadMu.Lock()
	s.actx, s.hctx = actx, hctx
	s.running.Store(true)
	s.mu.RLock()
	for _, l := range s.listeners {
		s.startLoop(l)
	}
	exitIdle := s.cfg.ExitIdleTime
	s.mu.RUnlock()
	s.reloadMu.Unlock()

	var idleWG sync.WaitGroup
	if exitIdle > 0 {
		idleWG.Add(1)
		go func() {
			defer idleWG.Done()
			if s.idle.wait(actx, exitIdle, s.connected) {
				s.log.Info("no connection for exit_idle_time; exiting", zap.Duration("exit_idle_time", exitIdle))
				stopAccept()
			}
		}()
	}

	<-actx.Done()
	idleWG.Wait()
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.shutdown(stopHandlers)
	return nil
}

// connected returns the number of open connections over all services.
func (s *Server) connected() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	for _, svc := range s.services {
		n += svc.connected.Load()
	}
	for _, svc := range s.draining {
		n += svc.connected.Load()
	}
	return n
}

// StopTimeout is the longest stop_timeout of the services now running.
// A graceful stop takes at most about three of it: the drain, the
// SIGTERM-to-SIGKILL escalation of what remains, and the stop of backends
// started on demand.
func (s *Server) StopTimeout() time.Duration {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return max(longestStop(s.services), longestStop(s.draining))
}

func longestStop(services []*service) time.Duration {
	d := time.Duration(0)
	for _, svc := range services {
		d = max(d, svc.stopTimeout())
	}
	return d
}

func (s *Server) shutdown(stopHandlers context.CancelFunc) {
	s.mu.RLock()
	listeners := make([]*listener, 0, len(s.listeners))
	for _, l := range s.listeners {
		listeners = append(listeners, l)
	}
	services := append(slices.Clone(s.services), s.draining...)
	s.mu.RUnlock()

	// 1. Stop accepting: close the sockets (files stay until the end, so
	// a client sees "refused", never a missing path mid-shutdown).
	for _, l := range listeners {
		l.closeSocket()
	}
	// And end the waits for a slot (overflow = "wait"): a client whose
	// PROXY header came in while the limit was reached is refused now.
	for _, svc := range services {
		svc.slots.stop()
	}
	// 2. Wait for every accept loop: no new connection can start after.
	s.loops.Wait()

	// 3. Let connections finish for up to the longest stop_timeout.
	grace := longestStop(services)
	if !waitAll(services, grace) {
		s.log.Info("stopping remaining instances", zap.Int64("connected", s.connected()))
	}
	// 4. Stop what remains: exec handlers stop their process groups
	// (SIGTERM, then SIGKILL after stop_timeout), relays close.
	stopHandlers()
	if !waitAll(services, grace+2*time.Second) {
		s.log.Error("connections still open after stop; giving up on them", zap.Int64("connected", s.connected()))
	}
	// Backends started on demand stop with the server.
	for _, svc := range services {
		closeSettings(svc.cur.Load())
	}
	for _, svc := range services {
		if ph, ok := svc.cur.Load().handler.(*proxyHandler); ok && ph.backend != nil {
			ph.backend.wait()
		}
	}
	s.relayer.Close()
	s.engine.Close()
	s.sender.Close()
	// Processes of ended instances that are not gone yet hold their
	// dynamic UID and cgroup; they get a little longer.
	s.sandbox.close(2 * time.Second)
	// 5. Remove the socket files acceptd created.
	for _, l := range listeners {
		l.close()
	}
	s.devNull.Close()
}

// waitAll waits up to d for every service's connections to end.
func waitAll(services []*service, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		for _, svc := range services {
			svc.conns.Wait()
		}
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		// The waiter goroutine ends when the connections do; shutdown
		// waits for it below through the second waitAll or abandons it
		// only when the process exits.
		return false
	}
}

// Status returns a snapshot of every service, in configuration order.
func (s *Server) Status() Status {
	s.mu.RLock()
	services := slices.Clone(s.services)
	s.mu.RUnlock()
	st := Status{Services: make([]ServiceStatus, 0, len(services))}
	for _, svc := range services {
		s.mu.RLock()
		ss := svc.status()
		s.mu.RUnlock()
		st.Services = append(st.Services, ss)
	}
	return st
}

// closeSettings releases what a replaced or removed service's handler
// holds beyond its connections (an on-demand backend).
func closeSettings(st *settings) {
	if ph, ok := st.handler.(*proxyHandler); ok {
		ph.close()
	}
}

func sortInstances(in []InstanceStatus) {
	sort.Slice(in, func(i, j int) bool { return in[i].Started.Before(in[j].Started) })
}
