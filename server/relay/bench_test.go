package relay

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// naiveRelay is the baseline the issue measures against: io.Copy each way
// (which splices through a pipe it holds for the whole copy), half-close
// forwarded, one goroutine besides the caller's, like Relay.
func naiveRelay(a, b net.Conn) {
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		closeWrite(dst)
	}
	var wg sync.WaitGroup
	wg.Go(func() { cp(a, b) })
	cp(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

// backendServer accepts connections on a fresh listener of kind and hands
// them out in order.
type backendServer struct {
	ln    net.Listener
	conns chan net.Conn
}

func newBackend(b testing.TB, kind string) *backendServer {
	s := &backendServer{ln: listen(b, kind), conns: make(chan net.Conn, 16)}
	go func() {
		defer close(s.conns)
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.conns <- c
		}
	}()
	b.Cleanup(func() {
		s.ln.Close()
		for c := range s.conns {
			c.Close()
		}
	})
	return s
}

func (s *backendServer) dial(b testing.TB) net.Conn {
	c, err := net.Dial(s.ln.Addr().Network(), s.ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func (s *backendServer) accept(b testing.TB) net.Conn {
	select {
	case c := <-s.conns:
		return c
	case <-time.After(5 * time.Second):
		b.Fatal("backend accept timed out")
		return nil
	}
}

// socketProxyd starts systemd-socket-proxyd on an inherited TCP listener,
// relaying to the backend, and returns the address clients dial.
func socketProxyd(b *testing.B, be *backendServer) string {
	const bin = "/lib/systemd/systemd-socket-proxyd"
	if _, err := os.Stat(bin); err != nil {
		b.Skip("systemd-socket-proxyd not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	// LISTEN_PID must be the proxy's pid: set it in the shell that then
	// execs the proxy in its place.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$1"`, bin, be.ln.Addr().String())
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return ln.Addr().String()
}

// BenchmarkRelayThroughput uploads through the relay (client -> backend)
// over 1 and 8 streams, TCP->TCP and TCP->UNIX, next to the naive
// two-io.Copy relay, systemd-socket-proxyd (when installed) and a direct
// connection. Compare MB/s between implementations of the same variant.
func BenchmarkRelayThroughput(b *testing.B) {
	for _, back := range []string{"tcp", "unix"} {
		for _, streams := range []int{1, 8} {
			for _, impl := range []string{"relay", "naive", "socket-proxyd", "direct"} {
				name := fmt.Sprintf("tcp-%s/streams=%d/%s", back, streams, impl)
				b.Run(name, func(b *testing.B) { benchThroughput(b, impl, back, streams) })
			}
		}
	}
}

func benchThroughput(b *testing.B, impl, back string, streams int) {
	const chunk = 1 << 20
	r := New()
	defer r.Close()
	be := newBackend(b, back)
	var proxyAddr string
	if impl == "socket-proxyd" {
		proxyAddr = socketProxyd(b, be)
	}
	var relays sync.WaitGroup
	clients := make([]net.Conn, streams)
	backends := make([]net.Conn, streams)
	for i := range streams {
		switch impl {
		case "direct":
			clients[i] = be.dial(b)
		case "socket-proxyd":
			c, err := net.Dial("tcp", proxyAddr)
			if err != nil {
				b.Fatal(err)
			}
			clients[i] = c
		default:
			cl, rc := connPair(b, "tcp")
			rb := be.dial(b)
			clients[i] = cl
			relays.Go(func() {
				if impl == "naive" {
					naiveRelay(rc, rb)
				} else {
					r.Relay(context.Background(), rc, rb, Options{})
				}
			})
		}
		backends[i] = be.accept(b)
	}
	buf := make([]byte, chunk)
	var left atomic.Int64
	left.Store(int64(b.N))
	b.SetBytes(chunk)
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range streams {
		// Each stream takes chunks until b.N are sent, then closes; its
		// receiver drains to EOF.
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if _, err := clients[i].Write(buf); err != nil {
					b.Error(err)
					break
				}
			}
			closeWrite(clients[i])
		})
		wg.Go(func() {
			if _, err := io.Copy(io.Discard, backends[i]); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	for i := range streams {
		clients[i].Close()
		backends[i].Close()
	}
	relays.Wait()
}

// raiseNoFile lifts the soft RLIMIT_NOFILE to the hard limit and returns
// the limit in effect.
func raiseNoFile(b *testing.B) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	return lim.Cur
}

// slabBytes is the kernel's slab memory (pipe buffers, socket and file
// structs live there). It is machine-wide, so only a rough figure.
func slabBytes(b *testing.B) int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Slab:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// goMem is the Go memory that depends on how many connections are relayed:
// live heap objects plus goroutine stacks, after a collection (which also shrinks
// idle stacks).
func goMem() (heap, stack int64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), int64(ms.StackInuse)
}

// idleCost holds n idle relayed connections (each has moved one byte each
// way first) and returns what they cost per connection beyond the sockets
// themselves: Go heap+stack bytes, pipe fds, and slab bytes (rough).
func idleCost(b *testing.B, impl string, n int) (heapPer, stackPer, pipesPer, slabPer float64) {
	be := newBackend(b, "tcp")
	fe := listen(b, "tcp")
	defer fe.Close()
	r := New()
	defer r.Close()

	type quad struct{ cl, rc, rb, bc net.Conn }
	qs := make([]quad, n)
	for i := range qs {
		cl, err := net.Dial("tcp", fe.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		rc, err := fe.Accept()
		if err != nil {
			b.Fatal(err)
		}
		qs[i] = quad{cl: cl, rc: rc, rb: be.dial(b), bc: be.accept(b)}
	}
	_, pipes0 := fdCounts(b)
	slab0 := slabBytes(b)
	heap0, stack0 := goMem()

	var wg sync.WaitGroup
	for _, q := range qs {
		wg.Go(func() {
			if impl == "naive" {
				naiveRelay(q.rc, q.rb)
			} else {
				r.Relay(context.Background(), q.rc, q.rb, Options{})
			}
		})
	}
	one := make([]byte, 1)
	for _, q := range qs {
		for _, p := range [][2]net.Conn{{q.cl, q.bc}, {q.bc, q.cl}} {
			if _, err := p[0].Write(one); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(p[1], one); err != nil {
				b.Fatal(err)
			}
		}
	}
	time.Sleep(100 * time.Millisecond) // let every direction park again
	heap1, stack1 := goMem()
	slab1 := slabBytes(b)
	_, pipes1 := fdCounts(b)

	for _, q := range qs {
		q.cl.Close()
		q.bc.Close()
	}
	wg.Wait()
	fn := float64(n)
	return float64(heap1-heap0) / fn, float64(stack1-stack0) / fn,
		float64(pipes1-pipes0) / fn, float64(slab1-slab0) / fn
}

// BenchmarkIdleConnections holds 1,000 idle relayed connections with the
// Relayer and with the naive relay, one after the other in one run, and
// reports per connection: Go heap and stack bytes, pipe fds held, slab bytes
// (machine-wide, rough) and the naive/relay ratios. Run with -benchtime=1x.
func BenchmarkIdleConnections(b *testing.B) {
	const n = 1000
	if lim := raiseNoFile(b); lim < 8*n+100 {
		b.Skipf("RLIMIT_NOFILE %d is too low for %d connections", lim, n)
	}
	// Goroutine structs are never freed, only reused: make 3n of them up
	// front so neither measurement pays for them and the second does not
	// reuse the first's. (Each costs about 0.4 KiB more, per goroutine.)
	var warm sync.WaitGroup
	gate := make(chan struct{})
	for range 3 * n {
		warm.Go(func() { <-gate })
	}
	close(gate)
	warm.Wait()
	for range b.N {
		relayHeap, relayStack, relayPipes, relaySlab := idleCost(b, "relay", n)
		naiveHeap, naiveStack, naivePipes, naiveSlab := idleCost(b, "naive", n)
		relayGo, naiveGo := relayHeap+relayStack, naiveHeap+naiveStack
		b.ReportMetric(relayHeap, "relay-heap-B/conn")
		b.ReportMetric(relayStack, "relay-stack-B/conn")
		b.ReportMetric(naiveHeap, "naive-heap-B/conn")
		b.ReportMetric(naiveStack, "naive-stack-B/conn")
		b.ReportMetric(relayPipes, "relay-pipefds/conn")
		b.ReportMetric(naivePipes, "naive-pipefds/conn")
		b.ReportMetric(relaySlab, "relay-slab-B/conn")
		b.ReportMetric(naiveSlab, "naive-slab-B/conn")
		if relayGo > 0 {
			b.ReportMetric(naiveGo/relayGo, "naive/relay-go")
		}
		if relayGo+relaySlab > 0 {
			b.ReportMetric((naiveGo+naiveSlab)/(relayGo+relaySlab), "naive/relay-total")
		}
	}
}
