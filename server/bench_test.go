package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acceptd/acceptd/config"
)

// The benchmarks here drive a real Server over loopback, the way clients
// do: connect, read until the server closes, close. They report conn/s and
// the p50/p99 of connect-to-EOF, next to ns/op (which is 1/rate times the
// concurrency, so compare conn/s across concurrencies, not ns/op).
// bench/spawn.sh puts the same figures next to tcpserver and xinetd.

// tinyProgram returns a per-connection program that writes one line and
// exits: a static C program when gcc can build one (the one bench/spawn.sh
// measures), else /bin/true (dynamic, so slower to exec, and silent).
func tinyProgram(b *testing.B) string {
	b.Helper()
	if gcc, err := exec.LookPath("gcc"); err == nil {
		dir := b.TempDir()
		src := filepath.Join(dir, "hello.c")
		bin := filepath.Join(dir, "hello")
		prog := "#include <unistd.h>\nint main(void) { return write(1, \"hello\\n\", 6) == 6 ? 0 : 1; }\n"
		if err := os.WriteFile(src, []byte(prog), 0o644); err != nil {
			b.Fatal(err)
		}
		out, err := exec.Command(gcc, "-static", "-O2", "-o", bin, src).CombinedOutput()
		if err == nil {
			return bin
		}
		b.Logf("gcc -static failed, using /bin/true: %v\n%s", err, out)
	}
	return "/bin/true"
}

func parseB(b *testing.B, src string) *config.Config {
	b.Helper()
	cfg, diags := config.Parse("bench.hcl", []byte(src), nil)
	if diags.HasErrors() {
		b.Fatalf("config: %v", diags)
	}
	return cfg
}

// startB runs a server for cfg without logging (a benchmark measures the
// server, not zaptest) until the benchmark ends.
func startB(b *testing.B, cfg *config.Config, opts Options) *Server {
	b.Helper()
	srv, err := New(cfg, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run = %v", err)
		}
	})
	return srv
}

func listenAddr(b *testing.B, srv *Server, service string) string {
	b.Helper()
	for _, s := range srv.Status().Services {
		if s.Name == service {
			return s.Listen[0]
		}
	}
	b.Fatalf("no service %q", service)
	return ""
}

// churnResult is what one batch of client connections measured.
type churnResult struct {
	n       int
	errs    int64
	elapsed time.Duration
	lat     []time.Duration
}

// churn makes n connections to addr, conc at a time, each reading until
// the server closes. Every connection has a 10 s deadline, so a stuck
// server ends the batch rather than the benchmark run.
func churn(addr string, n, conc int) churnResult {
	var next atomic.Int64
	var errs atomic.Int64
	lats := make([][]time.Duration, conc)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			buf := make([]byte, 512)
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					errs.Add(1)
					continue
				}
				c.SetDeadline(t0.Add(10 * time.Second))
				for err == nil {
					_, err = c.Read(buf)
				}
				c.Close()
				if err != io.EOF {
					errs.Add(1)
					continue
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	return churnResult{n: n, errs: errs.Load(), elapsed: time.Since(start), lat: slices.Concat(lats...)}
}

func (r churnResult) rate() float64 {
	return float64(len(r.lat)) / r.elapsed.Seconds()
}

// report puts a batch's rate and latency percentiles on b.
func (r churnResult) report(b *testing.B) {
	b.Helper()
	if r.errs > 0 {
		b.Errorf("%d of %d connections failed", r.errs, r.n)
	}
	slices.Sort(r.lat)
	pct := func(p float64) float64 {
		if len(r.lat) == 0 {
			return 0
		}
		return float64(r.lat[min(len(r.lat)-1, int(p*float64(len(r.lat))))]) / 1e6
	}
	b.ReportMetric(r.rate(), "conn/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkExecSpawn measures the per-connection spawn path end to end:
// accept, instance bookkeeping, spawn of a tiny static program with the
// socket on stdin/stdout, its exit, the reap and the log line, with 1, 8
// and 64 clients at a time, for stderr = "null" and the default "log"
// (a pipe and a reader goroutine per connection).
//
// cgroup=on is the default where a cgroup2 hierarchy is writable (every
// instance in a cgroup of its own); cgroup=off is Options.NoCgroups, the
// plain fork+exec path. Where no hierarchy is writable both are the same.
func BenchmarkExecSpawn(b *testing.B) {
	prog := tinyProgram(b)
	for _, cg := range []string{"on", "off"} {
		for _, stderr := range []string{"null", "log"} {
			srv := startB(b, parseB(b, fmt.Sprintf(`
service "hello" {
  listen          = ["127.0.0.1:0"]
  max_connections = 1000
  exec {
    command = [%q]
    stderr  = %q
  }
}`, prog, stderr)), Options{NoCgroups: cg == "off"})
			addr := listenAddr(b, srv, "hello")
			for _, conc := range []int{1, 8, 64} {
				b.Run(fmt.Sprintf("cgroup=%s/stderr=%s/c=%d", cg, stderr, conc), func(b *testing.B) {
					churn(addr, conc, conc) // warm up: threads, pools
					b.ResetTimer()
					churn(addr, b.N, conc).report(b)
				})
			}
		}
	}
}

// BenchmarkAcceptBuiltin measures the accept path without a process: the
// builtin "time" service writes 4 bytes and closes.
func BenchmarkAcceptBuiltin(b *testing.B) {
	srv := startB(b, parseB(b, `
service "time" {
  listen          = ["127.0.0.1:0"]
  max_connections = 1000
  builtin         = "time"
}`), Options{})
	addr := listenAddr(b, srv, "time")
	for _, conc := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("c=%d", conc), func(b *testing.B) {
			churn(addr, conc, conc)
			b.ResetTimer()
			churn(addr, b.N, conc).report(b)
		})
	}
}

// BenchmarkStatusDuringChurn is issue 4's "reading status while 500
// connections churn does not slow accepting": 500 clients at a time
// connect to a builtin service, in alternating batches with and without
// a goroutine that reads srv.Status() in a loop (as fast as it can, or
// every 10 ms like an eager scraper). Alternating batches in one run make
// the ratio robust to the machine's load changing. Reported: conn/s of
// each kind of batch, their ratio (1.0 = no slowdown) and Status calls/s.
func BenchmarkStatusDuringChurn(b *testing.B) {
	const clients = 500
	srv := startB(b, parseB(b, `
service "time" {
  listen          = ["127.0.0.1:0"]
  max_connections = 1000
  builtin         = "time"
}`), Options{})
	addr := listenAddr(b, srv, "time")
	for _, every := range []time.Duration{0, 10 * time.Millisecond} {
		name := "loop"
		if every > 0 {
			name = "every=" + every.String()
		}
		b.Run(name, func(b *testing.B) {
			churn(addr, clients, clients)
			b.ResetTimer()
			const rounds = 4
			per := max(b.N/(2*rounds), clients)
			var quiet, busy time.Duration
			var quietN, busyN int
			var calls atomic.Int64
			for range rounds {
				r := churn(addr, per, clients)
				quiet += r.elapsed
				quietN += len(r.lat)
				if r.errs > 0 {
					b.Errorf("quiet batch: %d connections failed", r.errs)
				}

				stop := make(chan struct{})
				var reader sync.WaitGroup
				reader.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if st := srv.Status(); len(st.Services) != 1 {
							b.Errorf("Status has %d services", len(st.Services))
						}
						calls.Add(1)
						if every > 0 {
							time.Sleep(every)
						}
					}
				})
				r = churn(addr, per, clients)
				close(stop)
				reader.Wait()
				busy += r.elapsed
				busyN += len(r.lat)
				if r.errs > 0 {
					b.Errorf("status batch: %d connections failed", r.errs)
				}
			}
			qr := float64(quietN) / quiet.Seconds()
			br := float64(busyN) / busy.Seconds()
			b.ReportMetric(qr, "quiet-conn/s")
			b.ReportMetric(br, "status-conn/s")
			b.ReportMetric(br/qr, "ratio")
			b.ReportMetric(float64(calls.Load())/busy.Seconds(), "status/s")
		})
	}
}
