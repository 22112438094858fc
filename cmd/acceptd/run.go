package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/acceptd/acceptd/config"
	"github.com/acceptd/acceptd/server"
	"github.com/acceptd/acceptd/server/activation"
	"github.com/acceptd/acceptd/server/control"
	"github.com/acceptd/acceptd/server/metrics"
	"github.com/acceptd/acceptd/server/notify"
)

func runRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", stderr)
	path := fs.String("config", config.DefaultPath, "configuration `FILE`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "acceptd run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	env := readStartEnv()
	if env.err != nil {
		fmt.Fprintf(stderr, "acceptd: socket activation: %v\n", env.err)
		return 1
	}
	cfg, diags := config.Load(*path, config.OSLookup())
	if printDiags(stderr, diags) {
		return 1
	}
	return serveConfig(cfg, daemonOptions{configPath: *path, control: true}, env, stderr)
}

// daemonOptions says what a running daemon does beyond its services.
type daemonOptions struct {
	// configPath is re-read on SIGHUP; "" when the configuration did not
	// come from a file (acceptd exec, acceptd proxy).
	configPath string
	// control binds the configuration's control socket.
	control bool
}

// newLogger builds acceptd's logger from the log block. Logs go to stderr,
// where systemd's journal (or the terminal) picks them up.
func newLogger(lc config.Log, stderr io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(lc.Level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	var enc zapcore.Encoder
	if lc.Format == "json" {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
		ec.EncodeDuration = zapcore.StringDurationEncoder
		enc = zapcore.NewJSONEncoder(ec)
	} else {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeDuration = zapcore.StringDurationEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(stderr)), level)
	return zap.New(core), nil
}

// serveConfig runs the daemon for cfg until SIGTERM or SIGINT and returns
// the exit status. The order is CONTRACT's Lifecycle: bind everything
// (services, control socket, metrics) first, exit 1 with nothing bound if
// any of it fails, and only then tell systemd READY=1.
func serveConfig(cfg *config.Config, opt daemonOptions, env *startEnv, stderr io.Writer) int {
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "acceptd: %v\n", err)
		return 1
	}
	defer log.Sync()
	for _, w := range env.warnings() {
		log.Warn("ignoring part of the environment", zap.String("reason", w))
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// Metrics read the server's status at scrape time; the server exists
	// before the endpoint serves.
	var srv *server.Server
	sopts := server.Options{Log: log, Listen: server.InheritedListen(env.sockets)}
	var reg *prometheus.Registry
	if cfg.Metrics != nil {
		var obs *metrics.Observer
		reg, obs = metrics.NewRegistry(func() server.Status { return srv.Status() })
		sopts.Observer = obs
	}
	srv, err = server.New(cfg, sopts)
	if err != nil {
		fmt.Fprintf(stderr, "acceptd: %v\n", err)
		return 1
	}
	// Inherited sockets no service claimed are closed, so that systemd
	// sees them unused rather than silently held.
	for _, sock := range env.sockets.CloseUnclaimed() {
		log.Warn("closed an inherited socket no service uses", zap.Int("fd", sock.FD), zap.String("name", sock.Name), zap.String("address", sock.Addr))
	}
	// abort closes what was bound when a later start-up step fails.
	abort := func(err error) int {
		fmt.Fprintf(stderr, "acceptd: %v\n", err)
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		srv.Run(cancelled)
		return 1
	}

	d := &daemon{srv: srv, log: log, path: opt.configPath, notify: env.notify}
	var ctl *control.Server
	if opt.control {
		if ctl, err = control.Listen(cfg.Control.Socket, cfg.Control.Mode); err != nil {
			return abort(err)
		}
	}
	var metricsLn net.Listener
	if cfg.Metrics != nil {
		if metricsLn, err = metrics.Listen(cfg.Metrics.Listen.ListenAddr()); err != nil {
			if ctl != nil {
				ctl.Close()
			}
			return abort(fmt.Errorf("metrics: %w", err))
		}
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var wg sync.WaitGroup
	if ctl != nil {
		wg.Go(func() {
			if err := ctl.Serve(ctx, d, log); err != nil {
				log.Error("control socket failed", zap.Error(err))
			}
		})
	}
	if metricsLn != nil {
		wg.Go(func() {
			if err := metrics.Serve(ctx, metricsLn, reg, log); err != nil {
				log.Error("metrics endpoint failed", zap.Error(err))
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-hup:
				d.Reload(ctx)
			case <-ctx.Done():
				return
			}
		}
	})
	wg.Go(func() {
		env.notify.RunWatchdog(ctx, func(err error) { log.Warn("watchdog ping failed", zap.Error(err)) })
	})

	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(ctx) }()
	log.Info("acceptd started", zap.Int("services", len(cfg.Services)))
	if err := env.notify.Ready(readyStatus(srv)); err != nil {
		log.Warn("sd_notify READY failed", zap.Error(err))
	}

	var rerr error
	select {
	case rerr = <-runErr:
		// exit_idle_time ended the server by itself.
		env.notify.Stopping()
		stop()
	case <-ctx.Done():
		env.notify.Stopping()
		// A hard ceiling above the graceful stop (which takes at most
		// about three stop_timeouts, reloads included), so that a drain
		// that hangs cannot keep the unit from stopping forever.
		ceiling := time.AfterFunc(3*srv.StopTimeout()+30*time.Second, func() {
			log.Error("shutdown took too long; exiting")
			os.Exit(1)
		})
		defer ceiling.Stop()
		rerr = <-runErr
	}
	wg.Wait()
	if rerr != nil {
		log.Error("server failed", zap.Error(rerr))
		return 1
	}
	log.Info("acceptd stopped")
	return 0
}

// readyStatus is the STATUS= line systemctl status shows.
func readyStatus(srv *server.Server) string {
	st := srv.Status()
	n := 0
	for _, s := range st.Services {
		n += len(s.Listen)
	}
	return fmt.Sprintf("serving %d services on %d sockets", len(st.Services), n)
}

// startEnv is what acceptd takes from its environment at start: sockets
// passed by systemd and the notification socket. Both are read (and the
// variables removed) before anything could start a child.
type startEnv struct {
	sockets *activation.Set
	notify  *notify.Notifier
	err     error
}

func readStartEnv() *startEnv {
	e := &startEnv{}
	e.sockets, e.err = activation.FromEnv(os.Getenv, os.Unsetenv, os.Getpid())
	e.notify = notify.New(os.Getenv, os.Unsetenv, os.Getpid())
	return e
}

func (e *startEnv) warnings() []string {
	return append(e.sockets.Warnings(), e.notify.Warnings()...)
}

// daemon is the control socket's view of the running server.
type daemon struct {
	srv    *server.Server
	log    *zap.Logger
	path   string
	notify *notify.Notifier
	// mu serialises reloads from SIGHUP and the control socket.
	mu sync.Mutex
}

func (d *daemon) Status() server.Status { return d.srv.Status() }

// Reload reads the configuration file again and applies it; a file with
// errors is refused as a whole and the old configuration keeps running.
func (d *daemon) Reload(ctx context.Context) server.ReloadResult {
	if d.path == "" {
		return server.ReloadResult{Errors: []string{"this daemon was not started from a configuration file"}}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.notify.Reloading()
	// Deferred in a closure: the STATUS= line must count what runs after
	// the reload, not before.
	defer func() { d.notify.Ready(readyStatus(d.srv)) }()
	d.log.Info("reloading", zap.String("config", d.path))
	cfg, diags := config.Load(d.path, config.OSLookup())
	if diags.HasErrors() {
		config.SortDiagnostics(diags)
		res := server.ReloadResult{Errors: config.Errors(diags)}
		for _, e := range res.Errors {
			d.log.Error("reload refused", zap.String("error", e))
		}
		return res
	}
	res, err := d.srv.Apply(cfg)
	if err != nil {
		d.log.Error("reload refused", zap.Error(err))
		return server.ReloadResult{Errors: []string{err.Error()}}
	}
	d.log.Info("reloaded", zap.Strings("added", res.Added), zap.Strings("removed", res.Removed), zap.Strings("changed", res.Changed))
	return res
}

var _ control.Backend = (*daemon)(nil)
