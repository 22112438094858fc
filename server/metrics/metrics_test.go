package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	acctest "github.com/acceptd/acceptd/internal/testutil"
	"github.com/acceptd/acceptd/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func sampleStatus() server.Status {
	return server.Status{Services: []server.ServiceStatus{
		{
			Name: "hello", Mode: "exec", Listen: []string{"127.0.0.1:31337"},
			Accepted: 8, Connected: 1, Refused: 5,
			RefusedReasons: map[string]uint64{"limit": 3, "deny": 2},
			Exits:          map[string]uint64{"success": 6, "signal": 1},
		},
		{
			Name: "nginx", Mode: "proxy", Listen: []string{"[::]:80"},
			Accepted: 120, Connected: 2, BytesIn: 1536, BytesOut: 12 << 20,
		},
	}}
}

const wantCounters = `
# HELP acceptd_instance_exits_total Ended instances by result.
# TYPE acceptd_instance_exits_total counter
acceptd_instance_exits_total{result="signal",service="hello"} 1
acceptd_instance_exits_total{result="success",service="hello"} 6
# HELP acceptd_proxy_bytes_total Bytes relayed by a proxy service: in from clients, out to clients.
# TYPE acceptd_proxy_bytes_total counter
acceptd_proxy_bytes_total{direction="in",service="nginx"} 1536
acceptd_proxy_bytes_total{direction="out",service="nginx"} 1.2582912e+07
# HELP acceptd_socket_accepted_connections_total Connections handed to the service since acceptd started.
# TYPE acceptd_socket_accepted_connections_total counter
acceptd_socket_accepted_connections_total{service="hello"} 8
acceptd_socket_accepted_connections_total{service="nginx"} 120
# HELP acceptd_socket_current_connections Connections of the service open now.
# TYPE acceptd_socket_current_connections gauge
acceptd_socket_current_connections{service="hello"} 1
acceptd_socket_current_connections{service="nginx"} 2
# HELP acceptd_socket_refused_connections_by_reason_total Refused connections by reason; they sum to acceptd_socket_refused_connections_total.
# TYPE acceptd_socket_refused_connections_by_reason_total counter
acceptd_socket_refused_connections_by_reason_total{reason="deny",service="hello"} 2
acceptd_socket_refused_connections_by_reason_total{reason="limit",service="hello"} 3
# HELP acceptd_socket_refused_connections_total Connections closed by acceptd without being served (limit, allow/deny, rate, failed spawn or connect).
# TYPE acceptd_socket_refused_connections_total counter
acceptd_socket_refused_connections_total{service="hello"} 5
acceptd_socket_refused_connections_total{service="nginx"} 0
`

var counterNames = []string{
	"acceptd_socket_accepted_connections_total",
	"acceptd_socket_current_connections",
	"acceptd_socket_refused_connections_total",
	"acceptd_socket_refused_connections_by_reason_total",
	"acceptd_proxy_bytes_total",
	"acceptd_instance_exits_total",
}

func TestCollector(t *testing.T) {
	c := NewCollector(sampleStatus)
	if err := testutil.CollectAndCompare(c, strings.NewReader(wantCounters), counterNames...); err != nil {
		t.Error(err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestCollectorReadsAtScrape checks that values are the Status's at the
// time of each scrape, not at registration.
func TestCollectorReadsAtScrape(t *testing.T) {
	var accepted atomic.Uint64
	c := NewCollector(func() server.Status {
		return server.Status{Services: []server.ServiceStatus{{Name: "a", Mode: "exec", Accepted: accepted.Load()}}}
	})
	for _, n := range []uint64{0, 1, 1000} {
		accepted.Store(n)
		want := fmt.Sprintf(`
# HELP acceptd_socket_accepted_connections_total Connections handed to the service since acceptd started.
# TYPE acceptd_socket_accepted_connections_total counter
acceptd_socket_accepted_connections_total{service="a"} %d
`, n)
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), "acceptd_socket_accepted_connections_total"); err != nil {
			t.Error(err)
		}
	}
	// An exec service has no bytes series at all.
	if n := testutil.CollectAndCount(c, "acceptd_proxy_bytes_total"); n != 0 {
		t.Errorf("%d acceptd_proxy_bytes_total series for an exec service, want 0", n)
	}
}

func TestObserver(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	o := NewObserver(reg)
	o.SpawnLatency("hello", 2*time.Millisecond)
	o.SpawnLatency("hello", 300*time.Millisecond)
	o.Service("hello").ConnectionEnded(90 * time.Second)

	const want = `
# HELP acceptd_spawn_latency_seconds Time from accepting a connection to starting its instance's program.
# TYPE acceptd_spawn_latency_seconds histogram
acceptd_spawn_latency_seconds_bucket{service="hello",le="0.0001"} 0
acceptd_spawn_latency_seconds_bucket{service="hello",le="0.00025"} 0
acceptd_spawn_latency_seconds_bucket{service="hello",le="0.0005"} 0
acceptd_spawn_latency_seconds_bucket{service="hello",le="0.001"} 0
acceptd_spawn_latency_seconds_bucket{service="hello",le="0.0025"} 1
acceptd_spawn_latency_seconds_bucket{service="hello",le="0.005"} 1
acceptd_spawn_latency_seconds_bucket{service="hello",le="0.01"} 1
acceptd_spawn_latency_seconds_bucket{service="hello",le="0.025"} 1
acceptd_spawn_latency_seconds_bucket{service="hello",le="0.05"} 1
acceptd_spawn_latency_seconds_bucket{service="hello",le="0.1"} 1
acceptd_spawn_latency_seconds_bucket{service="hello",le="0.25"} 1
acceptd_spawn_latency_seconds_bucket{service="hello",le="0.5"} 2
acceptd_spawn_latency_seconds_bucket{service="hello",le="1"} 2
acceptd_spawn_latency_seconds_bucket{service="hello",le="+Inf"} 2
acceptd_spawn_latency_seconds_sum{service="hello"} 0.302
acceptd_spawn_latency_seconds_count{service="hello"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "acceptd_spawn_latency_seconds"); err != nil {
		t.Error(err)
	}
	// A service's two histograms appear together, at its first
	// observation.
	o.ConnectionEnded("echo", 0)
	if n := testutil.CollectAndCount(o.spawn); n != 2 {
		t.Errorf("%d spawn series, want 2 (hello, echo)", n)
	}
	if n := testutil.CollectAndCount(o.duration); n != 2 {
		t.Errorf("%d duration series, want 2 (hello, echo)", n)
	}
	var m dto.Metric
	if err := o.duration.WithLabelValues("hello").(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	if h := m.GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != 90 {
		t.Errorf("hello duration count %d sum %v, want 1 and 90", h.GetSampleCount(), h.GetSampleSum())
	}

	o.Forget("echo")
	if n := testutil.CollectAndCount(o.duration); n != 1 {
		t.Errorf("%d duration series after Forget(echo), want 1", n)
	}
}

func TestNilObserver(t *testing.T) {
	var o *Observer
	o.SpawnLatency("x", time.Second)
	o.ConnectionEnded("x", time.Second)
	o.Service("x").SpawnLatency(time.Second)
	o.Forget("x")
}

// TestScrape serves a registry over real loopback HTTP and checks the
// exposition a Prometheus server would get, then the graceful stop.
func TestScrape(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(sampleStatus))
	o := NewObserver(reg)
	o.SpawnLatency("hello", 2*time.Millisecond)

	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, reg, zaptest.NewLogger(t)) }()
	url := "http://" + ln.Addr().String() + "/metrics"

	if err := testutil.ScrapeAndCompare(url, strings.NewReader(wantCounters), counterNames...); err != nil {
		t.Error(err)
	}
	body := get(t, url, http.StatusOK)
	for _, line := range []string{
		`acceptd_spawn_latency_seconds_count{service="hello"} 1`,
		`acceptd_spawn_latency_seconds_bucket{service="hello",le="0.0025"} 1`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("scrape lacks %q", line)
		}
	}
	get(t, "http://"+ln.Addr().String()+"/", http.StatusNotFound)

	// Many scrapes from several goroutines at once, bounded in count.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10 {
				resp, err := http.Get(url)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	http.DefaultClient.CloseIdleConnections()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve() = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context was cancelled")
	}
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Error("listener still open after Serve returned")
	}
}

func get(t *testing.T, url string, code int) string {
	t.Helper()
	resp, b := acctest.Get(t, nil, url)
	if resp.StatusCode != code {
		t.Errorf("GET %s: %s, want %d", url, resp.Status, code)
	}
	return string(b)
}

func TestNewRegistry(t *testing.T) {
	reg, o := NewRegistry(sampleStatus)
	o.ConnectionEnded("hello", time.Second)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, name := range append(counterNames, "acceptd_connection_duration_seconds", "go_goroutines", "process_open_fds") {
		if !have[name] {
			t.Errorf("registry lacks %s", name)
		}
	}
}

func TestListenError(t *testing.T) {
	if ln, err := Listen("127.0.0.1:notaport"); err == nil {
		ln.Close()
		t.Fatal("Listen(bad address) succeeded")
	}
}

// The hot path: what the server pays per connection for the histograms.
func BenchmarkObserverByName(b *testing.B) {
	o := NewObserver(prometheus.NewRegistry())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.SpawnLatency("hello", time.Millisecond)
		}
	})
}

func BenchmarkServiceObserver(b *testing.B) {
	so := NewObserver(prometheus.NewRegistry()).Service("hello")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			so.SpawnLatency(time.Millisecond)
		}
	})
}

// BenchmarkWithLabelValues is the uncached baseline the Observer's cache
// is measured against.
func BenchmarkWithLabelValues(b *testing.B) {
	o := NewObserver(prometheus.NewRegistry())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.spawn.WithLabelValues("hello").Observe(0.001)
		}
	})
}

func BenchmarkScrapeCollector(b *testing.B) {
	st := server.Status{}
	for i := range 50 {
		st.Services = append(st.Services, server.ServiceStatus{
			Name: fmt.Sprintf("svc%d", i), Mode: "proxy", Accepted: uint64(i),
			RefusedReasons: map[string]uint64{"limit": 1}, Exits: map[string]uint64{"success": 2},
		})
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(func() server.Status { return st }))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
