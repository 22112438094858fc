package metrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/acceptd/acceptd/internal/httpserve"
	"github.com/acceptd/acceptd/server"
)

// NewRegistry returns a registry with acceptd's metrics — a Collector
// over status and an Observer — plus the Go runtime's and the process's
// own, and the Observer to hand to the server.
func NewRegistry(status func() server.Status) (*prometheus.Registry, *Observer) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewCollector(status),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg, NewObserver(reg)
}

// Listen binds the metrics endpoint's TCP address ("127.0.0.1:9464"), so
// that a bad address fails at start-up with the other listeners.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen: %w", err)
	}
	return ln, nil
}

// Timeouts of the metrics server: scrapes are small and scrapers patient.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownGrace     = 5 * time.Second
)

// Serve answers GET /metrics on ln from g until ctx is done, then shuts
// down gracefully (for at most a few seconds) and closes ln. It returns
// nil after ctx is done, or the error that stopped ln.
func Serve(ctx context.Context, ln net.Listener, g prometheus.Gatherer, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	errLog, err := zap.NewStdLogAt(log.With(zap.String("component", "metrics")), zap.WarnLevel)
	if err != nil {
		panic(err) // only for an invalid level
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      errLog,
		ErrorHandling: promhttp.ContinueOnError,
		// A few scrapes at once are plenty, and the bound keeps a
		// misbehaving scraper from piling up work.
		MaxRequestsInFlight: 4,
	}))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          errLog,
	}
	if err := httpserve.Serve(ctx, srv, ln, shutdownGrace); err != nil {
		return fmt.Errorf("metrics serve on %s: %w", ln.Addr(), err)
	}
	return nil
}
