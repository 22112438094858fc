package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Histogram buckets, in seconds. A fork/exec takes about a millisecond;
// the re-exec'd helper about twice that; a loaded host tens of them.
var (
	spawnBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
	// Connections last from a quick request to a day-long session.
	durationBuckets = []float64{0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600, 86400}
)

// Observer records the distributions the server's Status cannot hold. It
// is safe for concurrent use. A nil *Observer records nothing, so the
// server can call it unconditionally when metrics are off.
type Observer struct {
	spawn    *prometheus.HistogramVec
	duration *prometheus.HistogramVec

	// services caches each service's histogram children: a label lookup
	// in the vector hashes the label and takes a lock; a sync.Map load of
	// a key that is not changing takes neither.
	services sync.Map // string → *ServiceObserver
}

// ServiceObserver is one service's share of an Observer: hold on to it
// to skip even the cache lookup. A nil *ServiceObserver records nothing.
type ServiceObserver struct {
	spawn, duration prometheus.Observer
}

// NewObserver creates the histograms and registers them with reg. It
// panics if reg already has metrics of those names, which is a bug.
func NewObserver(reg prometheus.Registerer) *Observer {
	o := &Observer{
		spawn: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "acceptd_spawn_latency_seconds",
			Help:    "Time from accepting a connection to starting its instance's program.",
			Buckets: spawnBuckets,
		}, []string{"service"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "acceptd_connection_duration_seconds",
			Help:    "Time from accepting a connection to its end.",
			Buckets: durationBuckets,
		}, []string{"service"}),
	}
	reg.MustRegister(o.spawn, o.duration)
	return o
}

// Service returns the observer of one service. Its two histograms are
// created together on first use, so both series exist (at zero) from the
// service's first observation on, as Prometheus prefers series to exist
// before their first event.
func (o *Observer) Service(name string) *ServiceObserver {
	if o == nil {
		return nil
	}
	if so, ok := o.services.Load(name); ok {
		return so.(*ServiceObserver)
	}
	so, _ := o.services.LoadOrStore(name, &ServiceObserver{
		spawn:    o.spawn.WithLabelValues(name),
		duration: o.duration.WithLabelValues(name),
	})
	return so.(*ServiceObserver)
}

// Forget drops a removed service's histograms, so they stop being
// exported. Call it after the service's last connection has ended: an
// observation after Forget brings the series back.
func (o *Observer) Forget(name string) {
	if o == nil {
		return
	}
	o.services.Delete(name)
	o.spawn.DeleteLabelValues(name)
	o.duration.DeleteLabelValues(name)
}

// SpawnLatency records the time from accept to the start of one
// instance's program (the child exists; its exec may still run).
func (o *Observer) SpawnLatency(service string, d time.Duration) {
	o.Service(service).SpawnLatency(d)
}

// ConnectionEnded records how long a connection lasted.
func (o *Observer) ConnectionEnded(service string, d time.Duration) {
	o.Service(service).ConnectionEnded(d)
}

// SpawnLatency records the time from accept to the start of one
// instance's program (the child exists; its exec may still run).
func (so *ServiceObserver) SpawnLatency(d time.Duration) {
	if so != nil {
		so.spawn.Observe(d.Seconds())
	}
}

// ConnectionEnded records how long a connection lasted.
func (so *ServiceObserver) ConnectionEnded(d time.Duration) {
	if so != nil {
		so.duration.Observe(d.Seconds())
	}
}
