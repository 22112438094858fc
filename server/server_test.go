package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/config"
	"github.com/acceptd/acceptd/internal/testutil"
	"github.com/acceptd/acceptd/spawn"
)

func TestMain(m *testing.M) {
	spawn.MaybeRunHelper()
	if os.Getenv("ACCEPTD_SERVER_TEST_PROG") == "owner" {
		runOwner()
		return
	}
	goleak.VerifyTestMain(m)
}

// runOwner plays a wait-mode program: it accepts one connection on the
// listening socket it got as stdin, greets it and exits.
func runOwner() {
	ln, err := net.FileListener(os.Stdin)
	if err != nil {
		os.Exit(3)
	}
	c, err := ln.Accept()
	if err != nil {
		os.Exit(4)
	}
	c.Write([]byte("owned\n"))
	c.Close()
	os.Exit(0)
}

// shortDir returns a directory whose paths fit in sun_path.
func shortDir(t *testing.T) string { return testutil.ShortDir(t) }

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, diags := config.Parse("test.hcl", []byte(src), nil)
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	return cfg
}

// start runs a server for cfg and returns it with a stop function that
// waits for Run to return.
func start(t *testing.T, cfg *config.Config) (*Server, func()) {
	t.Helper()
	return startWith(t, cfg, Options{})
}

// startWith is start with opts (its Log the test's unless set).
func startWith(t *testing.T, cfg *config.Config, opts Options) (*Server, func()) {
	t.Helper()
	if opts.Log == nil {
		opts.Log = zaptest.NewLogger(t)
	}
	srv, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return srv, stop
}

func addrOf(t *testing.T, srv *Server, service string) string {
	t.Helper()
	for _, s := range srv.Status().Services {
		if s.Name == service {
			return s.Listen[0]
		}
	}
	t.Fatalf("no service %q", service)
	return ""
}

func TestBuiltinEchoAndCounters(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "echo.sock")
	srv, stop := start(t, parse(t, `
service "echo" {
  listen = ["127.0.0.1:0", "`+sock+`"]
  builtin = "echo"
}`))
	for _, a := range []struct{ network, addr string }{{"tcp", addrOf(t, srv, "echo")}, {"unix", sock}} {
		c, err := net.Dial(a.network, a.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("ping"))
		c.(interface{ CloseWrite() error }).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "ping" {
			t.Fatalf("%s echo = %q, %v; want ping", a.network, got, err)
		}
	}
	waitFor(t, func() bool { return srv.Status().Services[0].Connected == 0 })
	st := srv.Status().Services[0]
	if st.Accepted != 2 || st.Refused != 0 {
		t.Errorf("accepted, refused = %d, %d; want 2, 0", st.Accepted, st.Refused)
	}
	stop()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file left behind: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, "the condition", cond)
}

func TestLimitRefuseAndDeny(t *testing.T) {
	srv, _ := start(t, parse(t, `
service "hold" {
  listen = ["127.0.0.1:0"]
  max_connections = 3
  builtin = "discard"
}
service "denied" {
  listen = ["127.0.0.1:0"]
  deny = ["127.0.0.0/8"]
  builtin = "echo"
}`))
	addr := addrOf(t, srv, "hold")
	var held []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	waitFor(t, func() bool { return srv.Status().Services[0].Connected == 3 })
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			// The refusal's reset can beat connect's own completion.
			continue
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("over-limit connection was served")
		}
		c.Close()
	}
	if d, err := net.Dial("tcp", addrOf(t, srv, "denied")); err == nil {
		d.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := d.Read(make([]byte, 1)); err == nil {
			t.Error("denied connection was served")
		}
		d.Close()
	}
	for _, c := range held {
		c.Close()
	}
	waitFor(t, func() bool {
		st := srv.Status()
		return st.Services[0].Connected == 0 && st.Services[0].Refused == 5 && st.Services[1].Refused == 1
	})
	st := srv.Status()
	if got := st.Services[0]; got.Accepted != 3 || got.Refused != 5 || got.RefusedReasons["limit"] != 5 {
		t.Errorf("hold: accepted %d refused %d reasons %v; want 3, 5, limit:5", got.Accepted, got.Refused, got.RefusedReasons)
	}
	if got := st.Services[1]; got.Accepted != 0 || got.Refused != 1 || got.RefusedReasons["deny"] != 1 {
		t.Errorf("denied: accepted %d refused %d reasons %v; want 0, 1, deny:1", got.Accepted, got.Refused, got.RefusedReasons)
	}
}

func TestOverflowWait(t *testing.T) {
	srv, _ := start(t, parse(t, `
service "echo" {
  listen = ["127.0.0.1:0"]
  max_connections = 1
  overflow = "wait"
  builtin = "echo"
}`))
	addr := addrOf(t, srv, "echo")
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return srv.Status().Services[0].Connected == 1 })
	second, err := net.Dial("tcp", addr) // completes in the backlog
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.Write([]byte("x"))
	second.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Fatal("second client served while the first holds the only slot")
	}
	first.Close()
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1)
	if _, err := io.ReadFull(second, buf); err != nil || buf[0] != 'x' {
		t.Fatalf("second client after the first left: %q, %v", buf, err)
	}
	if r := srv.Status().Services[0].Refused; r != 0 {
		t.Errorf("refused = %d; want 0", r)
	}
}

func TestBindFailureBindsNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := shortDir(t)
	sock := filepath.Join(dir, "first.sock")
	cfg := parse(t, `
service "a" {
  listen = ["`+sock+`"]
  builtin = "echo"
}
service "b" {
  listen = ["`+busy.Addr().String()+`"]
  builtin = "echo"
}`)
	_, err = New(cfg, Options{Log: zaptest.NewLogger(t)})
	if err == nil {
		t.Fatal("New succeeded on a busy port")
	}
	want := `test.hcl:7,13: bind service "b": `
	if got := err.Error(); len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("error = %q; want it to start with %q", got, want)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("first service's socket still there after a failed start: %v", err)
	}
}

func TestUnixPathSafety(t *testing.T) {
	regular, live, stale := testutil.SocketFiles(t, shortDir(t))

	for _, p := range []string{regular, live} {
		_, err := New(parse(t, `service "x" {
  listen = ["`+p+`"]
  builtin = "echo"
}`), Options{})
		if err == nil {
			t.Errorf("New with %s succeeded", p)
		}
	}
	if b, _ := os.ReadFile(regular); string(b) != "keep" {
		t.Error("regular file was touched")
	}
	srv, stop := start(t, parse(t, `service "x" {
  listen = ["`+stale+`"]
  builtin = "echo"
}`))
	_ = srv
	c, err := net.Dial("unix", stale)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	c.Close()
	stop()
}

func TestReloadKeepsSockets(t *testing.T) {
	dir := shortDir(t)
	a := filepath.Join(dir, "a.sock")
	b := filepath.Join(dir, "b.sock")
	srv, _ := start(t, parse(t, `
service "a" {
  listen = ["`+a+`"]
  builtin = "echo"
}
service "b" {
  listen = ["`+b+`"]
  builtin = "echo"
}`))
	held, err := net.Dial("unix", a)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	waitFor(t, func() bool { return srv.Status().Services[0].Connected == 1 })
	res, err := srv.Apply(parse(t, `
service "a" {
  listen = ["`+a+`"]
  builtin = "echo"
}
service "c" {
  listen = ["`+b+`"]
  builtin = "discard"
}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Unchanged) != 1 || len(res.Added) != 1 || len(res.Removed) != 1 {
		t.Errorf("reload result = %+v", res)
	}
	// The connection accepted before the reload is still served.
	held.Write([]byte("still"))
	held.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(held, buf); err != nil || string(buf) != "still" {
		t.Fatalf("held connection after reload: %q, %v", buf, err)
	}
	// b.sock now feeds the discard service c.
	c, err := net.Dial("unix", b)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("gone"))
	c.(*net.UnixConn).CloseWrite()
	got, _ := io.ReadAll(c)
	c.Close()
	if len(got) != 0 {
		t.Errorf("b.sock answered %q after becoming discard", got)
	}
	// A reload that cannot bind changes nothing.
	busy, _ := net.Listen("tcp", "127.0.0.1:0")
	defer busy.Close()
	_, err = srv.Apply(parse(t, `
service "a" {
  listen = ["`+busy.Addr().String()+`"]
  builtin = "echo"
}`))
	if err == nil {
		t.Fatal("reload onto a busy port succeeded")
	}
	if st := srv.Status(); len(st.Services) != 2 || st.Services[1].Name != "c" {
		t.Errorf("services after failed reload = %+v", st.Services)
	}
}

// TestReloadFastExecToBuiltin: accept loops of a fast-path exec socket
// wait in accept across a reload that gives the socket to a builtin; the
// connections they take then must not crash the server (they are served
// under what was loaded before the accept), and the next ones reach the
// builtin.
func TestReloadFastExecToBuiltin(t *testing.T) {
	sock := filepath.Join(shortDir(t), "x.sock")
	srv, _ := start(t, parse(t, `
service "x" {
  listen = ["`+sock+`"]
  exec { command = ["/bin/echo", "exec"] }
}`))
	ask := func() string {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.(*net.UnixConn).CloseWrite() // discard answers at our EOF
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := ask(); got != "exec\n" {
		t.Fatalf("before the reload: %q", got)
	}
	if _, err := srv.Apply(parse(t, `
service "x" {
  listen  = ["`+sock+`"]
  builtin = "discard"
}`)); err != nil {
		t.Fatal(err)
	}
	// The loops parked in accept each take one client under the old
	// settings (the program answers); after them the discard builtin
	// serves (it answers nothing).
	var got []string
	for range maxAcceptLoops + 1 {
		got = append(got, ask())
	}
	for i, g := range got {
		if g != "exec\n" && g != "" {
			t.Errorf("client %d after the reload: %q", i, g)
		}
	}
	if got[len(got)-1] != "" {
		t.Errorf("answers after the reload: %q; want the discard service's silence at the end", got)
	}
	if st := srv.Status(); len(st.Services) != 1 || st.Services[0].Mode != "builtin" {
		t.Errorf("status after the reload: %+v", st.Services)
	}
}

// TestReloadUDPBuiltin: a reload that changes the builtin on a kept UDP
// socket answers the next datagram with the new one.
func TestReloadUDPBuiltin(t *testing.T) {
	free, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.LocalAddr().String()
	free.Close()
	conf := func(kind string) *config.Config {
		return parse(t, `
service "u" {
  listen  = ["udp://`+addr+`"]
  builtin = "`+kind+`"
}`)
	}
	srv, _ := start(t, conf("echo"))
	u, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	ask := func() string {
		if _, err := u.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		_ = u.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		n, err := u.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	if got := ask(); got != "ping" {
		t.Fatalf("echo answered %q", got)
	}
	if _, err := srv.Apply(conf("daytime")); err != nil {
		t.Fatal(err)
	}
	if got := ask(); !strings.HasSuffix(got, "\r\n") || strings.Contains(got, "ping") {
		t.Errorf("after the reload to daytime: %q", got)
	}
	if st := srv.Status(); st.Services[0].Accepted != 2 {
		t.Errorf("accepted = %d; want 2 (both datagrams, counted by the service that answered)", st.Services[0].Accepted)
	}
}

func TestACLAndSources(t *testing.T) {
	mk := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			p, err := config.ParsePrefix(x)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		return out
	}
	a := acl{allow: mk("127.0.0.0/8", "::1"), deny: mk("127.0.0.2")}
	for _, tc := range []struct {
		addr string
		want bool
	}{{"127.0.0.1", true}, {"127.0.0.2", false}, {"::1", true}, {"::ffff:127.0.0.1", true}, {"10.0.0.1", false}} {
		if got := a.allows(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("allows(%s) = %v; want %v", tc.addr, got, tc.want)
		}
	}
	s := newSlots()
	s.configure(&config.Service{MaxConnections: 10, MaxConnectionsPerSource: 2, SourcePrefixV4: 24, SourcePrefixV6: 64})
	var got []refusal
	for _, ip := range []string{"192.0.2.1", "192.0.2.200", "192.0.2.3", "2001:db8::1", "2001:db8::2", "2001:db8::3", "2001:db8:1::1"} {
		_, why := s.acquire(netip.MustParseAddr(ip))
		got = append(got, why)
	}
	want := []refusal{"", "", refusedPerSource, "", "", refusedPerSource, ""}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("acquire #%d = %q; want %q", i, got[i], want[i])
		}
	}
}

func TestInstanceName(t *testing.T) {
	p := spawn.Conn{Proto: "TCP"}
	if got, want := instanceName("hello", 8, &p, "127.0.0.1:31337", "127.0.0.1:50312"), "hello@8-127.0.0.1:31337-127.0.0.1:50312"; got != want {
		t.Errorf("instanceName = %q; want %q", got, want)
	}
	u := spawn.Conn{Proto: "UNIX", PeerPID: 4711, PeerUID: 1000}
	if got, want := instanceName("hello", 0, &u, "", ""), "hello@0-4711-1000"; got != want {
		t.Errorf("instanceName = %q; want %q", got, want)
	}
}

func TestHandoff(t *testing.T) {
	dir := shortDir(t)
	one := filepath.Join(dir, "one.sock")
	def := filepath.Join(dir, "default.sock")
	srv, stop := start(t, parse(t, `
service "front" {
  listen = ["127.0.0.1:0", "127.0.0.2:0"]
  handoff {
    socket = "`+def+`"
    route {
      local  = "127.0.0.1/32"
      socket = "`+one+`"
    }
  }
}
service "one" {
  listen = ["handoff:`+one+`"]
  builtin = "echo"
}
service "default" {
  listen = ["handoff:`+def+`"]
  builtin = "daytime"
}`))
	st := srv.Status().Services[0]
	got := func(addr string) string {
		c := dial(t, addr)
		c.Write([]byte("hi"))
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	if g := got(st.Listen[0]); g != "hi" {
		t.Errorf("via route: %q; want the echo service's hi", g)
	}
	if g := got(st.Listen[1]); len(g) < 10 || g[len(g)-2:] != "\r\n" {
		t.Errorf("via default: %q; want a daytime line", g)
	}
	waitFor(t, func() bool {
		s := srv.Status().Services
		return s[1].Accepted == 1 && s[2].Accepted == 1 && s[1].Connected == 0 && s[2].Connected == 0
	})
	stop()
	for _, p := range []string{one, def} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind", p)
		}
	}
}

func TestWaitModeUDPAndStream(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "wait.sock")
	// The owner program (this test binary) gets the listening socket on
	// stdin, accepts one connection and answers.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	srv, stop := start(t, parse(t, `
service "owner" {
  listen = ["`+sock+`"]
  exec {
    accept  = false
    command = ["`+self+`"]
    environment = { ACCEPTD_SERVER_TEST_PROG = "owner" }
  }
}
service "udpecho" {
  listen = ["udp://127.0.0.1:0"]
  builtin = "echo"
}`))
	for i := 0; i < 2; i++ {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		if string(b) != "owned\n" {
			t.Errorf("activation %d: %q; want owned", i, b)
		}
	}
	waitFor(t, func() bool { return srv.Status().Services[0].Accepted == 2 })
	uaddr := srv.Status().Services[1].Listen[0][len("udp://"):]
	u, err := net.Dial("udp", uaddr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.Write([]byte("dgram"))
	u.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, err := u.Read(buf)
	if err != nil || string(buf[:n]) != "dgram" {
		t.Errorf("udp echo = %q, %v", buf[:n], err)
	}
	stop()
}

func TestAcceptProxyProtocol(t *testing.T) {
	srv, _ := start(t, parse(t, `
service "pp" {
  listen = ["127.0.0.1:0"]
  accept_proxy_protocol = true
  trusted_proxies = ["127.0.0.0/8"]
  allow = ["192.0.2.0/24"]
  builtin = "echo"
}`))
	addr := addrOf(t, srv, "pp")
	c := dial(t, addr)
	// The header and the first payload bytes in one segment: the payload
	// must reach the service, the header must not.
	c.Write([]byte("PROXY TCP4 192.0.2.1 198.51.100.7 5555 80\r\nping"))
	buf := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through PROXY header = %q, %v", buf, err)
	}
	in := srv.Status().Services[0].Instances
	if len(in) != 1 || in[0].Remote != "192.0.2.1:5555" || in[0].Local != "198.51.100.7:80" {
		t.Errorf("instances = %+v; want remote 192.0.2.1:5555 local 198.51.100.7:80", in)
	}
	// v2 from a client the allow list does not cover is refused.
	d := dial(t, addr)
	v2 := append([]byte{}, v2sig...)
	v2 = append(v2, 0x21, 0x11, 0, 12, 203, 0, 113, 9, 127, 0, 0, 1, 0x30, 0x39, 0, 80)
	d.Write(v2)
	d.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := d.Read(buf); err == nil {
		t.Error("client outside allow served")
	}
	// No header at all: refused.
	e := dial(t, addr)
	e.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	e.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := e.Read(buf); err == nil {
		t.Error("connection without header served")
	}
	waitFor(t, func() bool {
		st := srv.Status().Services[0]
		return st.RefusedReasons["deny"] == 1 && st.RefusedReasons["proxy_header"] == 1
	})
}

// TestProxyProtocolBehindBalancer: a relay that reads a PROXY header
// from a balancer (accept_proxy_protocol) and sends one to its backend
// (proxy_protocol) names the real client in it, not the balancer.
func TestProxyProtocolBehindBalancer(t *testing.T) {
	be, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	srv, _ := start(t, parse(t, `
service "pp" {
  listen = ["127.0.0.1:0"]
  accept_proxy_protocol = true
  trusted_proxies = ["127.0.0.0/8"]
  proxy {
    backend        = "`+be.Addr().String()+`"
    proxy_protocol = "v1"
  }
}`))
	c := dial(t, addrOf(t, srv, "pp"))
	c.Write([]byte("PROXY TCP4 192.0.2.1 198.51.100.7 5555 80\r\n"))
	b, err := be.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(b).ReadString('\n')
	if want := "PROXY TCP4 192.0.2.1 198.51.100.7 5555 80\r\n"; err != nil || line != want {
		t.Errorf("backend got %q, %v; want %q", line, err, want)
	}
}

// TestAcceptLoopsSpread: a per-connection service on the fast path gets
// one accept loop per P; overflow = "wait" keeps one (two loops would
// each let one client past a full slot); a reload between the two moves
// the socket from one to the other, and shutdown ends every loop
// (goleak in TestMain).
func TestAcceptLoopsSpread(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	cfgFor := func(overflow string) *config.Config {
		return parse(t, `
service "hi" {
  listen          = ["127.0.0.1:0"]
  max_connections = 16
  overflow        = "`+overflow+`"
  exec {
    command = ["/bin/echo", "hi"]
    stderr  = "null"
  }
}`)
	}
	srv, stop := start(t, cfgFor("refuse"))
	addr := addrOf(t, srv, "hi")
	loopsOf := func() int32 {
		srv.mu.RLock()
		defer srv.mu.RUnlock()
		for _, l := range srv.listeners {
			return l.extra.Load()
		}
		return -1
	}
	// Errorf, not Fatal: ask also runs in goroutines of its own.
	ask := func() {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if b, err := io.ReadAll(c); string(b) != "hi\n" {
			t.Errorf("served %q, %v", b, err)
		}
	}
	ask()
	waitFor(t, func() bool { return loopsOf() == 2 })
	// Many clients at once, served by every loop: all get their line.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10 {
				ask()
			}
		})
	}
	wg.Wait()

	if _, err := srv.Apply(cfgFor("wait")); err != nil {
		t.Fatal(err)
	}
	// The extra loops notice at their next connection and end. Clients
	// come several at a time: a loop whose spawn does not wait for the
	// exec is back in accept at once, and would take a lone client
	// after another.
	for i := 0; i < 50 && loopsOf() != 0; i++ {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(ask)
		}
		wg.Wait()
	}
	if n := loopsOf(); n != 0 {
		t.Fatalf("%d extra loops with overflow = wait", n)
	}
	ask()
	if n := loopsOf(); n != 0 {
		t.Fatalf("extra loops started again with overflow = wait: %d", n)
	}
	if _, err := srv.Apply(cfgFor("refuse")); err != nil {
		t.Fatal(err)
	}
	ask()
	waitFor(t, func() bool { return loopsOf() == 2 })
	waitFor(t, func() bool { return srv.Status().Services[0].Connected == 0 })
	if st := srv.Status().Services[0]; st.Refused != 0 || st.Accepted < 43 {
		t.Errorf("accepted %d, refused %d; want every client served", st.Accepted, st.Refused)
	}
	stop()
}

// TestStopTimeout: the longest stop_timeout counts a proxy's on-demand
// backend too, and follows a reload.
func TestStopTimeout(t *testing.T) {
	srv, _ := start(t, parse(t, `
service "a" {
  listen = ["127.0.0.1:0"]
  exec {
    command      = ["/bin/true"]
    stop_timeout = "7s"
  }
}`))
	if got := srv.StopTimeout(); got != 7*time.Second {
		t.Errorf("StopTimeout = %v; want 7s", got)
	}
	if _, err := srv.Apply(parse(t, `
service "a" {
  listen = ["127.0.0.1:0"]
  exec {
    command      = ["/bin/true"]
    stop_timeout = "7s"
  }
}
service "b" {
  listen = ["127.0.0.1:0"]
  proxy {
    backend = "127.0.0.1:9"
    start {
      command      = ["/bin/true"]
      stop_timeout = "9s"
    }
  }
}`)); err != nil {
		t.Fatal(err)
	}
	if got := srv.StopTimeout(); got != 9*time.Second {
		t.Errorf("after the reload StopTimeout = %v; want 9s", got)
	}
}

// TestReloadProxyPaths moves one socket between the raw accept path (a
// plain proxy), an exec service and a proxy the net package accepts
// (accept_proxy_protocol, detached to the engine once its header is
// read), and back: each client is served by what was loaded before its accept,
// a relay accepted before the reloads keeps working, and shutdown ends
// the engine's relays (goleak and the fd check of start see the rest).
func TestReloadProxyPaths(t *testing.T) {
	be, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer be.Close()
	wg.Go(func() {
		for {
			c, err := be.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.Write([]byte("backend:"))
				io.Copy(c, c)
			})
		}
	})
	sock := filepath.Join(shortDir(t), "p.sock")
	plain := `
service "p" {
  listen = ["` + sock + `"]
  proxy { backend = "` + be.Addr().String() + `" }
}`
	srv, stop := start(t, parse(t, plain))
	ask := func(msg string) string {
		t.Helper()
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte(msg))
		_ = c.(*net.UnixConn).CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Errorf("read: %v", err)
		}
		return string(b)
	}
	if got := ask("one"); got != "backend:one" {
		t.Fatalf("engine relay: %q", got)
	}
	held, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	r := bufio.NewReader(held)
	hello := make([]byte, len("backend:"))
	held.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(r, hello); err != nil {
		t.Fatal(err)
	}

	reload := func(src string) {
		t.Helper()
		if _, err := srv.Apply(parse(t, src)); err != nil {
			t.Fatal(err)
		}
	}
	// An accept loop parked under the old settings serves one client
	// each with them; then the new settings serve.
	settle := func(msg, want string) {
		t.Helper()
		var got []string
		for range maxAcceptLoops + 1 {
			got = append(got, ask(msg))
		}
		if got[len(got)-1] != want {
			t.Errorf("after the reload: %q, want %q at the end", got, want)
		}
	}
	reload(`
service "p" {
  listen = ["` + sock + `"]
  exec { command = ["/bin/sh", "-c", "cat >/dev/null; echo exec"] }
}`)
	settle("x", "exec\n")
	reload(`
service "p" {
  listen = ["` + sock + `"]
  accept_proxy_protocol = true
  proxy {
    backend        = "` + be.Addr().String() + `"
    proxy_protocol = "v1"
  }
}`)
	// accept_proxy_protocol reads the client's header before the
	// connect: accepted by the net package, then detached to the engine.
	settle("PROXY TCP4 192.0.2.1 192.0.2.2 1000 80\r\nx", "backend:PROXY TCP4 192.0.2.1 192.0.2.2 1000 80\r\nx")
	reload(plain)
	settle("x", "backend:x")

	// The relay accepted first is still served.
	held.Write([]byte("still\n"))
	if line, err := r.ReadString('\n'); err != nil || line != "still\n" {
		t.Fatalf("held relay after reloads: %q, %v", line, err)
	}
	stop()
	held.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.ReadByte(); err != io.EOF {
		t.Errorf("held relay after shutdown: %v, want EOF", err)
	}
}

// echoBackend listens on network/addr and echoes every connection until
// the test ends, counting the connections it accepts. It holds one
// goroutine per connection and one that accepts.
func echoBackend(t *testing.T, network, addr string) (net.Listener, *atomic.Int32) {
	t.Helper()
	be, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	accepted := new(atomic.Int32)
	t.Cleanup(func() {
		be.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := be.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
			})
		}
	})
	return be, accepted
}

// dial connects to addr over TCP; the connection is closed when the test
// ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialEach opens n TCP connections to addr, each sending first(i), closed
// when the test ends.
func dialEach(t *testing.T, addr string, n int, first func(i int) string) []net.Conn {
	t.Helper()
	clients := make([]net.Conn, n)
	for i := range clients {
		c := dial(t, addr)
		io.WriteString(c, first(i))
		clients[i] = c
	}
	return clients
}

// TestProxyRetryOnEngine: clients that arrive while the backend's socket
// does not exist yet wait in connect_retry, then relay, and neither the
// wait nor the relay holds a goroutine per connection (the net package's
// path holds one while it retries and two while it relays).
func TestProxyRetryOnEngine(t *testing.T) {
	dir := shortDir(t)
	bsock := filepath.Join(dir, "b.sock")
	srv, stop := start(t, parse(t, `
service "r" {
  listen = ["127.0.0.1:0"]
  proxy {
    backend       = "`+bsock+`"
    connect_retry = "20s"
  }
}`))
	addr := addrOf(t, srv, "r")
	const n = 40
	base := runtime.NumGoroutine()
	// Sent before the backend exists: it must arrive all the same.
	clients := dialEach(t, addr, n, func(i int) string { return fmt.Sprintf("c%02d\n", i) })
	testutil.WaitFor(t, 10*time.Second, "the clients to be accepted", func() bool {
		return srv.Status().Services[0].Accepted == n
	})
	if g := runtime.NumGoroutine() - base; g >= n/2 {
		t.Errorf("%d goroutines more while %d clients wait for the backend", g, n)
	}

	// The backend: one goroutine per connection and one that accepts,
	// counted out of what follows.
	_, accepted := echoBackend(t, "unix", bsock)
	testutil.WaitFor(t, 10*time.Second, "every client to reach the backend", func() bool {
		return accepted.Load() == n && srv.Status().Services[0].Connected == n
	})
	if g := runtime.NumGoroutine() - base - (n + 1); g >= n/2 {
		t.Errorf("%d goroutines more (the backend's left out) while %d connections are relayed", g, n)
	}
	for i, c := range clients {
		fmt.Fprintf(c, "more%02d\n", i)
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		if want := fmt.Sprintf("c%02d\nmore%02d\n", i, i); string(b) != want || err != nil {
			t.Errorf("client %d got %q, %v; want %q", i, b, err, want)
		}
	}
	stop()
}

// TestAcceptProxyProtocolOnEngine: a relayed connection whose PROXY
// header acceptd reads holds no goroutine once the header is read, and
// the backend learns the client the header named.
func TestAcceptProxyProtocolOnEngine(t *testing.T) {
	be, accepted := echoBackend(t, "tcp", "127.0.0.1:0")
	srv, stop := start(t, parse(t, `
service "a" {
  listen                = ["127.0.0.1:0"]
  accept_proxy_protocol = true
  proxy {
    backend        = "`+be.Addr().String()+`"
    proxy_protocol = "v1"
  }
}`))
	addr := addrOf(t, srv, "a")
	const n = 40
	base := runtime.NumGoroutine()
	clients := dialEach(t, addr, n, func(i int) string {
		return fmt.Sprintf("PROXY TCP4 192.0.2.%d 198.51.100.1 %d 443\r\nc%02d\n", i+1, 1000+i, i)
	})
	testutil.WaitFor(t, 10*time.Second, "every client to reach the backend", func() bool {
		return accepted.Load() == n && srv.Status().Services[0].Connected == n
	})
	if g := runtime.NumGoroutine() - base - (n + 1); g >= n/2 {
		t.Errorf("%d goroutines more (the backend's left out) while %d connections are relayed", g, n)
	}
	for i, c := range clients {
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		want := fmt.Sprintf("PROXY TCP4 192.0.2.%d 198.51.100.1 %d 443\r\nc%02d\n", i+1, 1000+i, i)
		if string(b) != want || err != nil {
			t.Errorf("client %d got %q, %v; want %q", i, b, err, want)
		}
	}
	stop()
}

// TestProxiedOverflowWait: with overflow = "wait", a client accepted while
// another's PROXY header was on its way waits for the slot that
// connection then took, instead of being refused.
func TestProxiedOverflowWait(t *testing.T) {
	srv, _ := start(t, parse(t, `
service "w" {
  listen                = ["127.0.0.1:0"]
  accept_proxy_protocol = true
  max_connections       = 1
  overflow              = "wait"
  builtin               = "echo"
}`))
	addr := addrOf(t, srv, "w")
	// The first client's header comes after acceptd has accepted it, and
	// the accept loop has gone back to accept meanwhile.
	first := dial(t, addr)
	time.Sleep(100 * time.Millisecond)
	io.WriteString(first, "PROXY TCP4 192.0.2.1 198.51.100.1 1000 443\r\n")
	waitFor(t, func() bool { return srv.Status().Services[0].Connected == 1 })
	second := dial(t, addr)
	io.WriteString(second, "PROXY TCP4 192.0.2.2 198.51.100.1 1000 443\r\nsecond")
	time.Sleep(200 * time.Millisecond)
	if st := srv.Status().Services[0]; st.Refused != 0 || st.Connected != 1 {
		t.Fatalf("while the first is served: refused %d, connected %d; want 0 and 1", st.Refused, st.Connected)
	}
	first.Close()
	buf := make([]byte, 6)
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(second, buf); err != nil || string(buf) != "second" {
		t.Fatalf("second client: %q, %v; want its echo once the first has gone", buf, err)
	}
}

// TestProxiedWaitShutdown: an accept loop that waits for a slot (overflow
// = "wait", its client's PROXY header there at accept, the slot taken by
// a connection whose header came late) stops waiting when shutdown
// begins, although the connection holding the slot is only stopped
// after the loops have ended.
func TestProxiedWaitShutdown(t *testing.T) {
	srv, stop := start(t, parse(t, `
service "w" {
  listen                = ["127.0.0.1:0"]
  accept_proxy_protocol = true
  max_connections       = 1
  overflow              = "wait"
  exec {
    command      = ["/bin/cat"]
    stop_timeout = "1s"
  }
}`))
	addr := addrOf(t, srv, "w")
	// Accept only connections that have sent something: the loop then
	// finds each client's bytes there when it accepts.
	srv.mu.RLock()
	for _, l := range srv.listeners {
		rc, err := l.ln.(syscall.Conn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		rc.Control(func(fd uintptr) {
			if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 30); err != nil {
				t.Error(err)
			}
		})
	}
	srv.mu.RUnlock()
	hdr := "PROXY TCP4 192.0.2.1 198.51.100.1 1000 443\r\n"
	// The first client's header is cut in two: the loop accepts it with
	// half a header, hands it to a goroutine and goes back to accept; the
	// second half then makes it take the only slot.
	first := dial(t, addr)
	io.WriteString(first, hdr[:10])
	time.Sleep(200 * time.Millisecond)
	io.WriteString(first, hdr[10:]+"one\n")
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(first, buf); err != nil || string(buf) != "one\n" {
		t.Fatalf("first client: %q, %v", buf, err)
	}
	// The second, whole header at once: the loop accepts it and waits
	// for the slot.
	second := dial(t, addr)
	io.WriteString(second, hdr)
	time.Sleep(200 * time.Millisecond)
	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		// Let the slot go, so that the test can end.
		first.Close()
		<-stopped
		t.Fatal("shutdown waited for the accept loop, which waited for a slot")
	}
}

// TestDeferAccept: with socket { defer_accept }, a TCP connection is not
// accepted (not counted, no instance) until its client sends something.
func TestDeferAccept(t *testing.T) {
	srv, _ := start(t, parse(t, `
service "d" {
  listen  = ["127.0.0.1:0"]
  builtin = "echo"
  socket {
    defer_accept = "30s"
  }
}`))
	c := dial(t, addrOf(t, srv, "d"))
	time.Sleep(300 * time.Millisecond)
	if n := srv.Status().Services[0].Accepted; n != 0 {
		t.Fatalf("accepted %d before the client sent anything; want 0", n)
	}
	io.WriteString(c, "x")
	buf := make([]byte, 1)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 'x' {
		t.Fatalf("echo after the first byte: %q, %v", buf, err)
	}
	if n := srv.Status().Services[0].Accepted; n != 1 {
		t.Errorf("accepted %d; want 1", n)
	}
}

// stderrLogged returns, in order, the stderr lines logged for instances
// whose names start with prefix.
func stderrLogged(logs *observer.ObservedLogs, prefix string) []string {
	var got []string
	for _, e := range logs.All() {
		if e.ContextMap()["stream"] == "stderr" && strings.HasPrefix(e.ContextMap()["instance"].(string), prefix) {
			got = append(got, e.Message)
		}
	}
	return got
}

// TestStderrLog: each line a program writes to stderr is logged with its
// instance, a line longer than the reader's buffer in pieces, connection
// after connection (the readers are reused).
func TestStderrLog(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	srv, stop := startWith(t, parse(t, `
service "err" {
  listen = ["127.0.0.1:0"]
  exec {
    command = ["/bin/sh", "-c", "printf '%05000d\\n' 0 >&2; echo second >&2; echo out"]
  }
}`), Options{Log: zap.New(core)})
	const conns = 3
	for i := 0; i < conns; i++ {
		c := dial(t, addrOf(t, srv, "err"))
		if got, err := io.ReadAll(c); err != nil || string(got) != "out\n" {
			t.Fatalf("connection %d: %q, %v", i, got, err)
		}
	}
	stop()
	long := fmt.Sprintf("%05000d", 0)
	for i := 0; i < conns; i++ {
		got := stderrLogged(logs, fmt.Sprintf("err@%d-", i))
		want := []string{long[:stderrBufSize], long[stderrBufSize:], "second"}
		if !slices.Equal(got, want) {
			t.Errorf("connection %d: stderr logged as %d lines %.40q..., want %d", i, len(got), got, len(want))
		}
	}
}

// TestStderrLogFollowed: the stderr of a program that runs on is logged
// while it runs (not only when it exits), and one that writes more than
// the pipe holds before it has run stderrFollowAfter is not stalled.
func TestStderrLogFollowed(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	srv, stop := startWith(t, parse(t, `
service "slow" {
  listen = ["127.0.0.1:0"]
  exec {
    command = ["/bin/sh", "-c", "echo early >&2; echo ready; read x; echo late >&2"]
  }
}
service "flood" {
  listen = ["127.0.0.1:0"]
  exec {
    command = ["/bin/sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x >&2; echo done"]
  }
}`), Options{Log: zap.New(core)})
	defer stop()
	stderrLines := func(service string) []string { return stderrLogged(logs, service+"@") }
	c := dial(t, addrOf(t, srv, "slow"))
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("slow: %q, %v", line, err)
	}
	// The program is still running (it waits for a line): "early" must
	// be logged now.
	waitFor(t, func() bool { return slices.Equal(stderrLines("slow"), []string{"early"}) })
	c.Write([]byte("go\n"))
	if _, err := io.ReadAll(br); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return slices.Equal(stderrLines("slow"), []string{"early", "late"}) })

	c = dial(t, addrOf(t, srv, "flood"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(c); err != nil || string(got) != "done\n" {
		t.Fatalf("flood: %q, %v", got, err)
	}
	waitFor(t, func() bool {
		n := 0
		for _, l := range stderrLines("flood") {
			n += len(l)
		}
		return n == 300000
	})
}

// TestStderrLogHeldByDescendant: a descendant that left the process group
// and keeps the stderr pipe open does not hold the connection's end (its
// log line and slot) for longer than a second after the program exits
// (here without cgroups, which would kill the descendant instead).
func TestStderrLogHeldByDescendant(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	// The descendant says through a FIFO when it has left the process
	// group (which acceptd kills when the program exits), so that it
	// surely outlives the program with the pipe open.
	dir := t.TempDir()
	fifo, pidFile := filepath.Join(dir, "left"), filepath.Join(dir, "pid")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
	})
	srv, stop := startWith(t, parse(t, fmt.Sprintf(`
service "fork" {
  listen = ["127.0.0.1:0"]
  exec {
    command = ["/bin/sh", "-c", "setsid sh -c 'echo $$ > %[2]s; echo > %[1]s; exec sleep 5' </dev/null >/dev/null & read x < %[1]s; echo bye >&2; echo out"]
  }
}`, fifo, pidFile)), Options{Log: zap.New(core), NoCgroups: true})
	defer stop()
	start := time.Now()
	c := dial(t, addrOf(t, srv, "fork"))
	if got, err := io.ReadAll(c); err != nil || string(got) != "out\n" {
		t.Fatalf("%q, %v", got, err)
	}
	waitFor(t, func() bool { return srv.Status().Services[0].Connected == 0 })
	if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
		t.Errorf("connection ended after %v; want about a second", d)
	}
	if got := stderrLogged(logs, ""); !slices.Equal(got, []string{"bye"}) {
		t.Errorf("stderr logged %q, want [bye]", got)
	}
}

// TestExecFailsAfterStart: a per-connection program that cannot be run
// any more (it was removed after the configuration was read) is refused
// with reason "spawn" and logged with the exec's error; the client sees
// the connection close, and the next connection is served.
func TestExecFailsAfterStart(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "hello")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	srv, stop := startWith(t, parse(t, `
service "gone" {
  listen = ["127.0.0.1:0"]
  exec {
    command = ["`+prog+`"]
  }
}`), Options{Log: zap.New(core)})
	addr := addrOf(t, srv, "gone")
	if got, err := io.ReadAll(dial(t, addr)); err != nil || string(got) != "hello\n" {
		t.Fatalf("before: %q, %v", got, err)
	}
	if err := os.Remove(prog); err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(c); err != nil || len(got) != 0 {
		t.Fatalf("after: %q, %v; want EOF", got, err)
	}
	waitFor(t, func() bool { return srv.Status().Services[0].Connected == 0 })
	st := srv.Status().Services[0]
	if st.Accepted != 2 || st.Refused != 1 || st.RefusedReasons["spawn"] != 1 {
		t.Errorf("accepted %d refused %d reasons %v; want 2, 1, spawn:1", st.Accepted, st.Refused, st.RefusedReasons)
	}
	stop()
	refused := logs.FilterMessage("connection refused").All()
	if len(refused) != 1 || !strings.Contains(fmt.Sprint(refused[0].ContextMap()["error"]), "spawn "+prog+": no such file or directory") {
		t.Errorf("refusals logged: %v", refused)
	}
}
