package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/acceptd/acceptd/internal/testutil"
)

// backendEnv makes the test binary a UNIX-socket backend (for proxy
// start blocks): its value is the path to listen on. It is checked in
// init, before TestMain, so that it needs no mode in prog_test.go.
const backendEnv = "ACCEPTD_TEST_BACKEND"

// backendDelayEnv delays the backend's listen, like a daemon that takes
// a while to start.
const backendDelayEnv = "ACCEPTD_TEST_BACKEND_DELAY"

func init() {
	if path := os.Getenv(backendEnv); path != "" {
		os.Exit(runUnixBackend(path))
	}
}

// runUnixBackend listens on path, greets every connection with "pid N"
// and echoes it until EOF; SIGTERM ends it.
func runUnixBackend(path string) int {
	if d, err := time.ParseDuration(os.Getenv(backendDelayEnv)); err == nil {
		time.Sleep(d)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		return 1
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		<-term
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return 0
		}
		go func() {
			defer c.Close()
			fmt.Fprintf(c, "pid %d\n", os.Getpid())
			io.Copy(c, c)
		}()
	}
}

// testBackend is a server in the test process that acceptd relays to.
type testBackend struct {
	ln net.Listener
	// addr is the backend as a configuration writes it: "127.0.0.1:PORT",
	// "/path" or "@name".
	addr     string
	accepted atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
}

// startBackend listens on network/address and runs serve for every
// connection; serve need not close it. Everything is closed when the
// test ends.
func startBackend(t testing.TB, network, address string, serve func(net.Conn)) *testBackend {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	return serveBackend(t, ln, serve)
}

func serveBackend(t testing.TB, ln net.Listener, serve func(net.Conn)) *testBackend {
	b := &testBackend{ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					continue
				}
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// A PROXY header the listener could not parse, say:
				// keep serving.
				continue
			}
			b.accepted.Add(1)
			b.mu.Lock()
			b.conns[c] = true
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				serve(c)
				c.Close()
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(b.close)
	return b
}

func (b *testBackend) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// open is how many of the backend's connections are still being served.
func (b *testBackend) open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// echoServe sends back everything until EOF, then ends its write side.
// It copies through a buffer: io.Copy between TCP conns splices and
// holds a pipe (two fds) per connection, too many for 5,000 of them.
func echoServe(c net.Conn) {
	buf := make([]byte, 16<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			break
		}
	}
	closeWriteConn(c)
}

func closeWriteConn(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// abstractName is a fresh name in the abstract UNIX namespace.
func abstractName() string {
	return fmt.Sprintf("@acd-it-%d-%d", os.Getpid(), rand.Uint64())
}

// exchange sends payload over c, closes its write side, and checks that
// everything read back until EOF has the same SHA-256.
func exchange(t testing.TB, c net.Conn, payload []byte) {
	t.Helper()
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		closeWriteConn(c)
		werr <- err
	}()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		t.Fatalf("read back from %s: %v after %d bytes", c.RemoteAddr(), err, n)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write %d bytes to %s: %v", len(payload), c.RemoteAddr(), err)
	}
	if want := sha256.Sum256(payload); !bytes.Equal(h.Sum(nil), want[:]) || n != int64(len(payload)) {
		t.Fatalf("read back %d bytes (sha256 %x), sent %d (sha256 %x)", n, h.Sum(nil), len(payload), want)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	r.Read(b)
	return b
}

// waitService polls the status of service until cond holds.
func (d *daemon) waitService(name, what string, cond func(serviceStatus) bool) serviceStatus {
	d.t.Helper()
	var s serviceStatus
	if !testutil.Poll(20*time.Second, func() bool {
		s = d.service(name)
		return cond(s)
	}) {
		d.t.Fatalf("service %s: timed out waiting for %s; status %+v", name, what, s)
	}
	return s
}

// TestProxyRelayForms relays TCP to TCP, TCP to a UNIX path, TCP to an
// abstract UNIX socket and UNIX to TCP, with 0 B, 1 B and 1 MiB each way,
// every byte checked; then reads the counters and the log lines.
func TestProxyRelayForms(t *testing.T) {
	beDir := testutil.ShortDir(t)
	tcpBE := startBackend(t, "tcp", "127.0.0.1:0", echoServe)
	unixBE := startBackend(t, "unix", filepath.Join(beDir, "be.sock"), echoServe)
	absBE := startBackend(t, "unix", abstractName(), echoServe)

	d := startDaemon(t, fmt.Sprintf(`
service "tcp2tcp" {
  listen = ["127.0.0.1:{{PORT0}}"]
  proxy { backend = %q }
}
service "tcp2unix" {
  listen = ["127.0.0.1:{{PORT1}}"]
  proxy { backend = "unix://%s" }
}
service "tcp2abstract" {
  listen = ["127.0.0.1:{{PORT2}}"]
  proxy { backend = %q }
}
service "unix2tcp" {
  listen = ["{{DIR}}/in.sock"]
  proxy { backend = "tcp://%s" }
}
service "dead" {
  listen = ["127.0.0.1:{{PORT3}}"]
  proxy { backend = "%s/nobody.sock" }
}
`, tcpBE.addr, unixBE.addr, absBE.addr, tcpBE.addr, beDir), daemonOpts{ports: 4})

	sizes := []int{0, 1, 1 << 20}
	total := uint64(0)
	for _, n := range sizes {
		total += uint64(n)
	}
	cases := []struct{ service, addr string }{
		{"tcp2tcp", d.addr(0)},
		{"tcp2unix", d.addr(1)},
		{"tcp2abstract", d.addr(2)},
		{"unix2tcp", filepath.Join(d.dir, "in.sock")},
	}
	for _, tc := range cases {
		t.Run(tc.service, func(t *testing.T) {
			for _, n := range sizes {
				c := dial(t, tc.addr)
				exchange(t, c, randomBytes(n))
				c.Close()
			}
		})
	}
	for _, tc := range cases {
		s := d.waitService(tc.service, "3 relays ended", func(s serviceStatus) bool {
			return s.Accepted == 3 && s.Connected == 0
		})
		st := d.rawService(tc.service)
		if st.BytesIn != total || st.BytesOut != total || s.Refused != 0 {
			t.Errorf("%s: bytes_in %d, bytes_out %d, refused %d; want %d, %d, 0", tc.service, st.BytesIn, st.BytesOut, s.Refused, total, total)
		}
		if s.Mode != "proxy" {
			t.Errorf("%s: mode %q, want proxy", tc.service, s.Mode)
		}
	}

	// A backend nobody listens on: the client is closed unserved and
	// the refusal is counted with its reason.
	c := dial(t, d.addr(3))
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("client of a dead backend: read %d bytes, %v; want EOF or reset", n, err)
	}
	s := d.waitService("dead", "a refusal", func(s serviceStatus) bool { return s.Refused == 1 && s.Connected == 0 })
	if s.Accepted != 1 || s.RefusedReasons["connect"] != 1 {
		t.Errorf("dead: accepted %d, refused_reasons %v; want 1 and connect=1", s.Accepted, s.RefusedReasons)
	}

	// One log line per relayed connection, with its bytes.
	ended := d.waitLogs("connection ended", 12)
	perService := map[string][]int64{}
	for _, e := range ended {
		in, okIn := e["bytes_in"].(float64)
		out, okOut := e["bytes_out"].(float64)
		if !okIn || !okOut || e.str("instance") == "" || e.str("remote") == "" {
			t.Errorf("log line without bytes_in/bytes_out/instance/remote: %v", e)
			continue
		}
		if in != out {
			t.Errorf("echo relay logged bytes_in %v != bytes_out %v: %v", in, out, e)
		}
		perService[e.str("service")] = append(perService[e.str("service")], int64(in))
	}
	for _, tc := range cases {
		got := perService[tc.service]
		if len(got) != 3 {
			t.Errorf("%s: %d \"connection ended\" lines (bytes %v), want 3", tc.service, len(got), got)
		}
	}
	refused := d.waitLogs("connection refused", 1)
	if refused[0].str("service") != "dead" || refused[0].str("reason") != "connect" {
		t.Errorf("refusal logged as %v, want service dead, reason connect", refused[0])
	}
	d.stop(filepath.Join(d.dir, "in.sock"))
}

// rawStatus has the proxy byte counters, which serviceStatus (shared
// with other tests) does not carry.
type rawServiceStatus struct {
	Name     string `json:"name"`
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
}

func (d *daemon) rawService(name string) rawServiceStatus {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, acceptdBin(), "status", "-json", "-control", d.control).Output()
	if err != nil {
		d.t.Fatalf("acceptd status: %v", err)
	}
	var st struct {
		Services []rawServiceStatus `json:"services"`
	}
	if err := jsonUnmarshal(out, &st); err != nil {
		d.t.Fatal(err)
	}
	for _, s := range st.Services {
		if s.Name == name {
			return s
		}
	}
	d.t.Fatalf("no service %q in %s", name, out)
	return rawServiceStatus{}
}

// TestProxyHalfClose: the client ends its write side first, the backend
// sees EOF and still answers; then the other way round, the backend ends
// first and the client still answers. systemd-socket-proxyd cannot do
// this.
func TestProxyHalfClose(t *testing.T) {
	// client first: the backend reads to EOF, then answers with the
	// byte count and digest.
	summary := func(c net.Conn) {
		h := sha256.New()
		n, err := io.Copy(h, c)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "%d %x\n", n, h.Sum(nil))
		closeWriteConn(c)
	}
	clientFirst := startBackend(t, "tcp", "127.0.0.1:0", summary)

	// backend first: it sends a greeting, ends its write side, then
	// reads what the client answers after seeing EOF.
	answers := make(chan string, 4)
	backendFirst := startBackend(t, "unix", abstractName(), func(c net.Conn) {
		io.WriteString(c, "greeting\n")
		closeWriteConn(c)
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			answers <- "error: " + err.Error()
			return
		}
		answers <- string(b)
	})

	d := startDaemon(t, fmt.Sprintf(`
service "cf" {
  listen = ["127.0.0.1:{{PORT0}}"]
  proxy { backend = %q }
}
service "bf" {
  listen = ["{{DIR}}/bf.sock"]
  proxy { backend = %q }
}
`, clientFirst.addr, backendFirst.addr), daemonOpts{ports: 1})

	payload := randomBytes(300 << 10)
	c := dial(t, d.addr(0))
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	closeWriteConn(c)
	sum := sha256.Sum256(payload)
	if got, want := readAll(t, c), fmt.Sprintf("%d %x\n", len(payload), sum); got != want {
		t.Errorf("client-first: backend answered %q, want %q", got, want)
	}

	u := dial(t, filepath.Join(d.dir, "bf.sock"))
	u.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(u)
	if err != nil || string(got) != "greeting\n" {
		t.Fatalf("backend-first: client read %q, %v; want the greeting then EOF", got, err)
	}
	if _, err := io.WriteString(u, "answer after EOF"); err != nil {
		t.Fatalf("backend-first: client cannot answer after EOF: %v", err)
	}
	closeWriteConn(u)
	select {
	case a := <-answers:
		if a != "answer after EOF" {
			t.Errorf("backend-first: backend got %q", a)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("backend-first: backend never got the client's answer")
	}
	// Both directions ended: the relay ends and the client sees its
	// connection closed.
	u.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := u.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("backend-first: after both sides ended, read %d, %v; want EOF", n, err)
	}
	d.waitService("bf", "the relay to end", func(s serviceStatus) bool { return s.Accepted == 1 && s.Connected == 0 })
	d.waitService("cf", "the relay to end", func(s serviceStatus) bool { return s.Accepted == 1 && s.Connected == 0 })
	d.stop(filepath.Join(d.dir, "bf.sock"))
}

// TestProxyTimeouts covers connect_timeout (a backend that never completes
// the handshake), connect_retry (a backend that starts listening 500ms
// after the client connected) and idle_timeout.
func TestProxyTimeouts(t *testing.T) {
	hung := testutil.FullBacklog(t)
	late := filepath.Join(testutil.ShortDir(t), "late.sock")
	idleBE := startBackend(t, "tcp", "127.0.0.1:0", echoServe)
	d := startDaemon(t, fmt.Sprintf(`
service "hung" {
  listen = ["127.0.0.1:{{PORT0}}"]
  proxy {
    backend         = %q
    connect_timeout = "300ms"
  }
}
service "late" {
  listen = ["127.0.0.1:{{PORT1}}"]
  proxy {
    backend       = %q
    connect_retry = "15s"
  }
}
service "idle" {
  listen = ["127.0.0.1:{{PORT2}}"]
  proxy {
    backend      = %q
    idle_timeout = "1s"
  }
}
`, hung, late, idleBE.addr), daemonOpts{ports: 3})

	t.Run("connect_timeout", func(t *testing.T) {
		c := dial(t, d.addr(0))
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("client of a hung backend: read %d, %v; want it closed after connect_timeout", n, err)
		}
		s := d.waitService("hung", "a refusal", func(s serviceStatus) bool { return s.Refused == 1 && s.Connected == 0 })
		if s.RefusedReasons["connect"] != 1 {
			t.Errorf("refused_reasons %v, want connect=1", s.RefusedReasons)
		}
	})

	t.Run("connect_retry", func(t *testing.T) {
		c := dial(t, d.addr(1))
		time.Sleep(500 * time.Millisecond)
		startBackend(t, "unix", late, echoServe)
		exchange(t, c, []byte("served although the backend started late"))
		d.waitService("late", "the relay to end", func(s serviceStatus) bool {
			return s.Accepted == 1 && s.Connected == 0 && s.Refused == 0
		})
	})

	t.Run("idle_timeout", func(t *testing.T) {
		c := dial(t, d.addr(2))
		// Traffic every 200ms keeps the relay for 1.6s, longer than
		// idle_timeout.
		r := bufio.NewReader(c)
		for i := 0; i < 8; i++ {
			fmt.Fprintf(c, "ping %d\n", i)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			line, err := r.ReadString('\n')
			if err != nil || line != fmt.Sprintf("ping %d\n", i) {
				t.Fatalf("ping %d over a busy relay: %q, %v", i, line, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		// Silence: acceptd closes both legs.
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if n, err := r.Read(make([]byte, 1)); n != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("silent relay: read %d, %v; want closed after idle_timeout", n, err)
		}
		testutil.WaitFor(t, 10*time.Second, "the backend leg to close", func() bool { return idleBE.open() == 0 })
		d.waitService("idle", "the relay to end", func(s serviceStatus) bool { return s.Connected == 0 })
	})
	d.stop()
}

// TestProxyResets: a backend that refuses, a client and a backend that
// reset mid-transfer. The other leg is closed promptly, the failure shows
// in the log, and acceptd keeps serving.
func TestProxyResets(t *testing.T) {
	// The backend of "crb" reads until the client goes away and reports
	// how its connection ended.
	backendSaw := make(chan error, 1)
	crb := startBackend(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := io.Copy(io.Discard, c)
		backendSaw <- err
	})
	// The backend of "brb" reads 64 KiB, then resets.
	brb := startBackend(t, "unix", abstractName(), func(c net.Conn) {
		io.CopyN(io.Discard, c, 64<<10)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	})
	// A TCP backend that resets is the sharper case: RST, not FIN.
	tcpReset := startBackend(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		io.CopyN(io.Discard, c, 64<<10)
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	echoBE := startBackend(t, "tcp", "127.0.0.1:0", echoServe)

	d := startDaemon(t, fmt.Sprintf(`
service "crb" {
  listen = ["127.0.0.1:{{PORT0}}"]
  proxy { backend = %q }
}
service "brb" {
  listen = ["127.0.0.1:{{PORT1}}"]
  proxy { backend = %q }
}
service "brbtcp" {
  listen = ["127.0.0.1:{{PORT2}}"]
  proxy { backend = %q }
}
service "echo" {
  listen = ["127.0.0.1:{{PORT3}}"]
  proxy { backend = %q }
}
`, crb.addr, brb.addr, tcpReset.addr, echoBE.addr), daemonOpts{ports: 4})

	t.Run("client reset", func(t *testing.T) {
		c := dial(t, d.addr(0)).(*net.TCPConn)
		if _, err := c.Write(randomBytes(128 << 10)); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 10*time.Second, "the backend connection", func() bool { return crb.accepted.Load() == 1 })
		c.SetLinger(0)
		c.Close()
		select {
		case err := <-backendSaw:
			// A reset reaches the backend as ECONNRESET; a plain EOF
			// would pass off a broken stream as complete.
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("backend leg after the client's reset ended with %v, want ECONNRESET", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("backend leg still open 10s after the client reset")
		}
		d.waitService("crb", "the relay to end", func(s serviceStatus) bool { return s.Connected == 0 })
	})

	for i, name := range []string{"brb", "brbtcp"} {
		t.Run("backend reset "+name, func(t *testing.T) {
			c := dial(t, d.addr(1+i))
			// Keep sending until the relay breaks; the client must see
			// its connection end, not hang.
			done := make(chan error, 1)
			go func() {
				buf := randomBytes(32 << 10)
				deadline := time.Now().Add(15 * time.Second)
				for time.Now().Before(deadline) {
					c.SetWriteDeadline(time.Now().Add(15 * time.Second))
					if _, err := c.Write(buf); err != nil {
						done <- err
						return
					}
				}
				done <- errors.New("writes still succeed 15s after the backend reset")
			}()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, rerr := c.Read(make([]byte, 1))
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				t.Fatalf("client leg still open after the backend reset: %v", rerr)
			}
			if werr := <-done; errors.Is(werr, os.ErrDeadlineExceeded) || werr.Error() == "writes still succeed 15s after the backend reset" {
				t.Fatalf("client write after backend reset: %v", werr)
			}
			d.waitService(name, "the relay to end", func(s serviceStatus) bool { return s.Connected == 0 })
		})
	}
	// The reset relays are logged with their error.
	var withErr int
	testutil.Poll(10*time.Second, func() bool {
		withErr = 0
		for _, e := range d.logs("connection ended") {
			if s := e.str("service"); (s == "crb" || s == "brbtcp") && e.str("error") != "" {
				withErr++
			}
		}
		return withErr >= 2
	})
	if withErr < 2 {
		t.Errorf("%d relays ended by a reset were logged with an error, want 2 (crb, brbtcp); log:\n%s", withErr, d.out)
	}

	// Everything still works.
	c := dial(t, d.addr(3))
	exchange(t, c, randomBytes(64<<10))
	d.stop()
}

// raiseNofile raises the soft RLIMIT_NOFILE to want (acceptd started
// afterwards inherits it) and restores it when the test ends; it skips
// when the hard limit is lower.
func raiseNofile(t *testing.T, want uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max < want {
		t.Skipf("RLIMIT_NOFILE hard limit %d < %d", lim.Max, want)
	}
	old := lim
	lim.Cur = max(lim.Cur, want)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// TestProxyManyConnections holds 5,000 relayed connections open, then
// has each exchange data, checks every byte, and checks that acceptd's
// descriptors come back to their baseline.
func TestProxyManyConnections(t *testing.T) {
	n := 5000
	if raceEnabled {
		// The race detector allows 8,128 live goroutines per process;
		// acceptd runs two per relay.
		n = 2000
	}
	// Test process: client and backend end of each; acceptd: both legs.
	raiseNofile(t, uint64(2*n+1000))
	be := startBackend(t, "tcp", "127.0.0.1:0", echoServe)
	d := startDaemon(t, fmt.Sprintf(`
service "many" {
  listen          = ["127.0.0.1:{{PORT}}"]
  max_connections = %d
  proxy { backend = %q }
}
`, n+100, be.addr), daemonOpts{})

	// One relay first: the relay engine makes its loops (an epoll fd and
	// an eventfd each) on first use, and they stay; the baseline is the
	// daemon that has relayed.
	warm := dial(t, d.addr(0))
	exchange(t, warm, []byte("warm-up\n"))
	warm.Close()
	d.waitService("many", "the warm-up relay to end", func(s serviceStatus) bool { return s.Connected == 0 })
	baseFDs, err := testutil.FDs(d.pid())
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, n)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 32; w++ {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := net.DialTimeout("tcp", d.addr(0), 20*time.Second)
				if err != nil {
					errs <- fmt.Errorf("dial %d: %w", i, err)
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("%d backend connections", n), func() bool { return be.open() == n })
	s := d.service("many")
	if s.Connected != uint64(n) || s.Accepted != uint64(n+1) {
		t.Fatalf("with %d held open: accepted %d, connected %d", n, s.Accepted, s.Connected)
	}
	t.Logf("%d relayed connections open after %s", n, time.Since(start).Round(time.Millisecond))

	next.Store(0)
	for w := 0; w < 32; w++ {
		wg.Go(func() {
			buf := make([]byte, 64)
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c := conns[i]
				msg := fmt.Sprintf("connection %06d says %016x\n", i, rand.Uint64())
				c.SetDeadline(time.Now().Add(20 * time.Second))
				if _, err := io.WriteString(c, msg); err != nil {
					errs <- fmt.Errorf("write %d: %w", i, err)
					return
				}
				got, err := io.ReadFull(c, buf[:len(msg)])
				if err != nil || string(buf[:got]) != msg {
					errs <- fmt.Errorf("connection %d read %q, %v; want %q", i, buf[:got], err, msg)
					return
				}
				c.Close()
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	t.Logf("all %d exchanged and closed after %s", n, time.Since(start).Round(time.Millisecond))

	// Every socket is closed again. Pipes may stay: the relay keeps a
	// bounded pool of empty splice pipes (64, two fds each) for reuse.
	base := fdKinds(baseFDs)
	var now map[string]int
	var ferr error
	if !testutil.Poll(20*time.Second, func() bool {
		var fds map[int]string
		fds, ferr = testutil.FDs(d.pid())
		if ferr != nil {
			return false // an unreadable list must not read as "none left"
		}
		now = fdKinds(fds)
		return now["socket"] <= base["socket"] && now["other"] <= base["other"] && now["pipe"] <= base["pipe"]+2*64
	}) {
		t.Errorf("acceptd's fds after the relays ended: %v (%v); before: %v", now, ferr, base)
	}
	t.Logf("acceptd's fds: before %v, after %v", base, now)
	d.waitService("many", "all relays to end", func(s serviceStatus) bool { return s.Connected == 0 })
	d.stop()
}

// fdKinds counts fds by kind: socket, pipe, other.
func fdKinds(fds map[int]string) map[string]int {
	k := map[string]int{}
	for _, target := range fds {
		switch {
		case strings.HasPrefix(target, "socket:"):
			k["socket"]++
		case strings.HasPrefix(target, "pipe:"):
			k["pipe"]++
		default:
			k["other"]++
		}
	}
	return k
}

// TestProxyStartBackend: with a start block, the backend (this test
// binary) starts on the first connection, clients wait until it accepts,
// it is stopped after stop_when_idle, and started again by the next
// connection.
func TestProxyStartBackend(t *testing.T) {
	d := startDaemon(t, fmt.Sprintf(`
service "ondemand" {
  listen = ["127.0.0.1:{{PORT}}"]
  proxy {
    backend       = "{{DIR}}/be.sock"
    connect_retry = "20s"
    start {
      command        = [%q]
      environment    = { %s = "{{DIR}}/be.sock", %s = "300ms" }
      stop_when_idle = "500ms"
    }
  }
}
`, bins.prog, backendEnv, backendDelayEnv), daemonOpts{})

	greet := func(c net.Conn) (int, *bufio.Reader) {
		t.Helper()
		r := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		line, err := r.ReadString('\n')
		pid, perr := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "pid "))
		if err != nil || perr != nil {
			t.Fatalf("on-demand backend greeted %q, %v", line, err)
		}
		return pid, r
	}

	if n := len(testutil.Children(d.pid())); n != 0 {
		t.Fatalf("acceptd has %d children before any connection", n)
	}
	// Two clients at once during the start: both wait and reach the
	// same backend.
	c1, c2 := dial(t, d.addr(0)), dial(t, d.addr(0))
	pid1, r1 := greet(c1)
	pid2, _ := greet(c2)
	if pid1 != pid2 {
		t.Errorf("two clients during the start reached backends %d and %d, want one", pid1, pid2)
	}
	fmt.Fprintf(c1, "echo me\n")
	if line, err := r1.ReadString('\n'); err != nil || line != "echo me\n" {
		t.Errorf("relay to the on-demand backend: %q, %v", line, err)
	}
	d.noteChildren()
	// stopsWhenIdle checks that backend pid outlasts stop_when_idle
	// while a relay is open and is stopped once closing ends them all.
	stopsWhenIdle := func(pid int, closing ...net.Conn) {
		t.Helper()
		time.Sleep(800 * time.Millisecond)
		if !testutil.Alive(pid) {
			t.Fatal("backend stopped while a relayed connection was open")
		}
		for _, c := range closing {
			c.Close()
		}
		testutil.WaitFor(t, 15*time.Second, "the idle backend to be stopped", func() bool {
			st, err := testutil.ReadStat(pid)
			return err != nil || st.State == 'Z'
		})
	}
	// Busy: not stopped while a relay is open, however long.
	stopsWhenIdle(pid1, c1, c2)

	c3 := dial(t, d.addr(0))
	pid3, _ := greet(c3)
	if pid3 == pid1 {
		t.Errorf("after the stop, the next connection reached the old backend %d", pid3)
	}
	d.noteChildren()
	// A connection to the running backend (relayed by the engine) keeps
	// it running after the others are gone, and its end lets it stop.
	c4 := dial(t, d.addr(0))
	pid4, r4 := greet(c4)
	if pid4 != pid3 {
		t.Errorf("a connection to the running backend %d reached %d", pid3, pid4)
	}
	c3.Close()
	fmt.Fprintf(c4, "still here\n")
	if line, err := r4.ReadString('\n'); err != nil || line != "still here\n" {
		t.Errorf("relay to the running backend: %q, %v", line, err)
	}
	stopsWhenIdle(pid3, c4)
	// Shutdown stops a running backend.
	c5 := dial(t, d.addr(0))
	pid5, _ := greet(c5)
	d.noteChildren()
	d.waitLogs("backend started", 3)
	d.stop()
	c5.Close()
	if st, err := testutil.ReadStat(pid5); err == nil && st.State != 'Z' {
		t.Errorf("backend %d still running after acceptd stopped", pid5)
	}
}

// proc is acceptd (or a wrapper) run without a control socket.
type proc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error
}

func startProc(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, out: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", cmd.Args, p.out)
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("%s still running after %s; output:\n%s", p.cmd.Args, timeout, p.out)
	}
	if p.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	t.Fatalf("%s: %v", p.cmd.Args, p.err)
	return -1
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and wants exit status 0.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Errorf("%s exited %d after SIGTERM, want 0; output:\n%s", p.cmd.Args, code, p.out)
	}
}

// dialEventually dials addr until it answers.
func dialEventually(t *testing.T, p *proc, addr string) net.Conn {
	t.Helper()
	network := "tcp"
	if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "@") {
		network = "unix"
	}
	var c net.Conn
	if !testutil.Poll(startTimeout, func() bool {
		if !p.running() {
			return true
		}
		var err error
		c, err = net.DialTimeout(network, addr, 5*time.Second)
		return err == nil
	}) || c == nil {
		t.Fatalf("%s not reachable at %s; output:\n%s", p.cmd.Args, addr, p.out)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestProxyCommandSimpleTCPUnixRelay runs acceptd proxy the way
// simpletcpunixrelay is run: a UNIX socket in front of a TCP-only daemon.
func TestProxyCommandSimpleTCPUnixRelay(t *testing.T) {
	be := startBackend(t, "tcp", "127.0.0.1:0", echoServe)
	sock := filepath.Join(testutil.ShortDir(t), "socket")
	p := startProc(t, exec.Command(acceptdBin(), "proxy", "-listen", "unix://"+sock, be.addr))
	c := dialEventually(t, p, sock)
	exchange(t, c, randomBytes(200<<10))
	p.stop(t)
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after acceptd proxy stopped (%v)", sock, err)
	}
}

// TestProxyCommandConnectionsMax: -c N and --connections-max=N limit the
// concurrent relays as systemd-socket-proxyd's flags do.
func TestProxyCommandConnectionsMax(t *testing.T) {
	be := startBackend(t, "tcp", "127.0.0.1:0", echoServe)
	for _, flag := range [][]string{{"-c", "2"}, {"--connections-max=2"}} {
		t.Run(strings.Join(flag, " "), func(t *testing.T) {
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			args := append([]string{"proxy"}, flag...)
			args = append(args, "-listen", addr, be.addr)
			p := startProc(t, exec.Command(acceptdBin(), args...))
			held := []net.Conn{dialEventually(t, p, addr), dial(t, addr)}
			for i, c := range held {
				fmt.Fprintf(c, "held %d\n", i)
				if got := readLine(t, c); got != fmt.Sprintf("held %d", i) {
					t.Fatalf("held connection %d got %q", i, got)
				}
			}
			// Over the limit: refused (reset, possibly before the
			// connect has returned).
			if third, err := net.DialTimeout("tcp", addr, 10*time.Second); err == nil {
				third.SetReadDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(third, "over the limit\n")
				if n, err := third.Read(make([]byte, 64)); n != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("third connection over %s: read %d, %v; want it refused", flag, n, err)
				}
				third.Close()
			} else if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("third connection over %s: %v; want a reset", flag, err)
			}
			held[0].Close()
			testutil.WaitFor(t, 10*time.Second, "a free slot", func() bool {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					return false
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, "x\n")
				b := make([]byte, 2)
				_, err = io.ReadFull(c, b)
				return err == nil && string(b) == "x\n"
			})
			held[1].Close()
			p.stop(t)
		})
	}
}

// TestProxyUnderSystemdSocketActivate runs `systemd-socket-activate -l
// ADDR acceptd proxy TARGET --exit-idle-time=1s`: the socket comes from
// LISTEN_FDS, and acceptd exits 0 once idle.
func TestProxyUnderSystemdSocketActivate(t *testing.T) {
	ssa := testutil.RequirePeer(t, "systemd-socket-activate")
	sockDir := testutil.ShortDir(t)
	be := startBackend(t, "unix", filepath.Join(sockDir, "nginx.sock"), echoServe)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startProc(t, exec.Command(ssa, "-l", addr, acceptdBin(), "proxy", "--exit-idle-time=1s", be.addr))
	c := dialEventually(t, p, addr)
	exchange(t, c, randomBytes(100<<10))
	c.Close()
	// A second connection on the same inherited socket.
	c2 := dial(t, addr)
	exchange(t, c2, []byte("again"))
	c2.Close()
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("acceptd proxy --exit-idle-time=1s exited %d, want 0; output:\n%s", code, p.out)
	}
	if !strings.Contains(p.out.String(), "exit_idle_time") {
		t.Errorf("no log line says why it exited; output:\n%s", p.out)
	}
}

// TestProxyExitIdleTimeSpans: --exit-idle-time= takes systemd time spans,
// as systemd-socket-proxyd's does, so an ExecStart line written for it
// works unchanged: bare seconds and spans with units exit after that
// long; "infinity" never does.
func TestProxyExitIdleTimeSpans(t *testing.T) {
	be := startBackend(t, "tcp", "127.0.0.1:0", echoServe)
	for _, span := range []string{"1.5", "1sec 500ms"} {
		t.Run(span, func(t *testing.T) {
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			p := startProc(t, exec.Command(acceptdBin(), "proxy", "-listen", addr, "--exit-idle-time="+span, be.addr))
			c := dialEventually(t, p, addr)
			exchange(t, c, []byte("hello"))
			c.Close()
			if code := p.wait(t, 20*time.Second); code != 0 {
				t.Errorf("exited %d, want 0", code)
			}
			if !strings.Contains(p.out.String(), `"exit_idle_time": "1.5s"`) {
				t.Errorf("no log line says it exited after 1.5s idle; output:\n%s", p.out)
			}
		})
	}
	t.Run("infinity", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		p := startProc(t, exec.Command(acceptdBin(), "proxy", "-listen", addr, "--exit-idle-time=infinity", be.addr))
		dialEventually(t, p, addr).Close()
		time.Sleep(2 * time.Second)
		if !p.running() {
			t.Fatalf("exited with --exit-idle-time=infinity; output:\n%s", p.out)
		}
		p.stop(t)
	})
	t.Run("not a span", func(t *testing.T) {
		p := startProc(t, exec.Command(acceptdBin(), "proxy", "-listen", "127.0.0.1:0", "--exit-idle-time=5mins", be.addr))
		if code := p.wait(t, 10*time.Second); code != 2 {
			t.Errorf("exited %d, want 2", code)
		}
		if !strings.Contains(p.out.String(), `-exit-idle-time "5mins": not a time span`) {
			t.Errorf("output does not name the flag and value:\n%s", p.out)
		}
	})
}

// jsonUnmarshal is encoding/json's Unmarshal with a useful error.
func jsonUnmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %q: %w", b, err)
	}
	return nil
}
