package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/acceptd/acceptd/config"
	"github.com/acceptd/acceptd/server"
	"github.com/acceptd/acceptd/server/control"
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
	cfg, diags := config.Load(*path, config.OSLookup())
	if printDiags(stderr, diags) {
		return 1
	}
	return serveConfig(cfg, daemonOptions{configPath: *path, control: true}, stderr)
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
// the exit status.
func serveConfig(cfg *config.Config, opt daemonOptions, stderr io.Writer) int {
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "acceptd: %v\n", err)
		return 1
	}
	defer log.Sync()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	srv, err := server.New(cfg, server.Options{Log: log})
	if err != nil {
		fmt.Fprintf(stderr, "acceptd: %v\n", err)
		return 1
	}

	d := &daemon{srv: srv, log: log, path: opt.configPath}
	var ctl *control.Server
	if opt.control {
		ctl, err = control.Listen(cfg.Control.Socket, cfg.Control.Mode)
		if err != nil {
			fmt.Fprintf(stderr, "acceptd: %v\n", err)
			// Closing the listeners of a server that never ran.
			cancelled, cancel := context.WithCancel(context.Background())
			cancel()
			srv.Run(cancelled)
			return 1
		}
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	done := make(chan struct{})
	var ctlDone chan struct{}
	if ctl != nil {
		ctlDone = make(chan struct{})
		go func() {
			defer close(ctlDone)
			if err := ctl.Serve(ctx, d, log); err != nil {
				log.Error("control socket failed", zap.Error(err))
			}
		}()
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-hup:
				d.Reload(ctx)
			case <-ctx.Done():
				return
			}
		}
	}()

	log.Info("acceptd started", zap.Int("services", len(cfg.Services)))
	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(ctx) }()

	var rerr error
	select {
	case rerr = <-runErr:
		// exit_idle_time ended the server by itself.
		stop()
	case <-ctx.Done():
		// A hard ceiling above the graceful stop, so that a drain that
		// hangs cannot keep the unit from stopping forever.
		ceiling := time.AfterFunc(maxStopTimeout(cfg)+30*time.Second, func() {
			log.Error("shutdown took too long; exiting")
			os.Exit(1)
		})
		defer ceiling.Stop()
		rerr = <-runErr
	}
	<-done
	if ctlDone != nil {
		<-ctlDone
	}
	if rerr != nil {
		log.Error("server failed", zap.Error(rerr))
		return 1
	}
	log.Info("acceptd stopped")
	return 0
}

func maxStopTimeout(cfg *config.Config) time.Duration {
	d := 5 * time.Second
	for _, s := range cfg.Services {
		if s.Exec != nil {
			d = max(d, s.Exec.StopTimeout)
		}
	}
	return d
}

// daemon is the control socket's view of the running server.
type daemon struct {
	srv  *server.Server
	log  *zap.Logger
	path string
}

func (d *daemon) Status() server.Status { return d.srv.Status() }

// Reload reads the configuration file again and applies it; a file with
// errors is refused as a whole and the old configuration keeps running.
func (d *daemon) Reload(ctx context.Context) server.ReloadResult {
	if d.path == "" {
		return server.ReloadResult{Errors: []string{"this daemon was not started from a configuration file"}}
	}
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
