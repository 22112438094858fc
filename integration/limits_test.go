package integration

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/acceptd/acceptd/internal/testutil"
)

// greeted reads the "greet" program's first line from c: true when it
// came (the connection is served), false when acceptd closed or reset c
// unserved (c is nil when the reset came before connect returned).
// Anything else fails the test.
func greeted(t testing.TB, c net.Conn) bool {
	t.Helper()
	if c == nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(greetTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	switch {
	case err == nil && line == "hello\n":
		return true
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return false
	}
	t.Errorf("reading the greeting from %s: %q, %v", c.RemoteAddr(), line, err)
	return false
}

// dialFrom connects to addr from the local IP from (127.0.0.0/8 is all
// loopback, so every address in it is a distinct client on this host).
func dialFrom(t testing.TB, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		// Refused so fast that the reset came before connect returned.
		return nil
	}
	if err != nil {
		// Errorf, not Fatalf: callers dial from goroutines of their own.
		t.Errorf("dial %s from %s: %v", addr, from, err)
		return nil
	}
	t.Cleanup(func() { c.Close() })
	return c
}

const concurrentClients = 200

// TestMaxConnectionsRefuse: 200 clients at once against a cap of 64 with
// overflow = "refuse": exactly 64 are served, 136 are refused and counted.
func TestMaxConnectionsRefuse(t *testing.T) {
	d := startDaemon(t, `
service "capped" {
  listen          = ["127.0.0.1:{{PORT}}"]
  max_connections = 64
  overflow        = "refuse"
  exec {
    `+prog("greet")+`
  }
}
`, daemonOpts{})
	conns := make([]net.Conn, concurrentClients)
	served := make([]bool, concurrentClients)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", d.addr(0), 30*time.Second)
			if errors.Is(err, syscall.ECONNRESET) {
				return // refused before connect returned
			}
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			conns[i] = c
			served[i] = greeted(t, c)
		})
	}
	wg.Wait()
	n := 0
	for _, s := range served {
		if s {
			n++
		}
	}
	if n != 64 {
		t.Errorf("%d of %d clients served with max_connections = 64, want exactly 64", n, concurrentClients)
	}
	s := d.service("capped")
	d.noteChildren()
	if s.Accepted != 64 || s.Connected != 64 || s.Refused != concurrentClients-64 || s.RefusedReasons["limit"] != concurrentClients-64 {
		t.Errorf("status: accepted %d connected %d refused %d (%v); want 64, 64, %d (limit)",
			s.Accepted, s.Connected, s.Refused, s.RefusedReasons, concurrentClients-64)
	}
	// The log reaches the test through a pipe: wait for the lines
	// before counting them (then no more may come).
	if got := len(d.waitLogs("connection refused", concurrentClients-64)); got != concurrentClients-64 {
		t.Errorf("%d \"connection refused\" log lines at debug level, want %d", got, concurrentClients-64)
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	ended := d.waitLogs("connection ended", 64)
	for _, e := range ended {
		if e.str("service") != "capped" || e.str("instance") == "" || e.str("remote") == "" || e["pid"] == nil || e.str("exit") == "" || e["duration"] == nil {
			t.Errorf("log line lacks service, instance, remote, pid, exit or duration: %v", e)
			break
		}
	}
	d.stop()
}

// TestMaxConnectionsWait: with overflow = "wait" every one of 200 clients
// is served in the end, never more than 64 at once.
func TestMaxConnectionsWait(t *testing.T) {
	d := startDaemon(t, `
service "queued" {
  listen          = ["127.0.0.1:{{PORT}}"]
  max_connections = 64
  overflow        = "wait"
  exec {
    `+prog("greet")+`
  }
}
`, daemonOpts{})
	var now, peak, served atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < concurrentClients; i++ {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", d.addr(0), 30*time.Second)
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			defer c.Close()
			if !greeted(t, c) {
				t.Errorf("client %d was refused with overflow = \"wait\"", i)
				return
			}
			// A served client holds its slot until it closes: the
			// count here never exceeds acceptd's.
			n := now.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			served.Add(1)
			time.Sleep(20 * time.Millisecond)
			now.Add(-1)
		})
	}
	// Sample acceptd's own count while the clients run.
	stopSampling := make(chan struct{})
	var sampled sync.WaitGroup
	sampled.Go(func() {
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if st, err := d.statusErr(); err == nil && len(st.Services) == 1 && st.Services[0].Connected > 64 {
				t.Errorf("status shows %d connected, above max_connections = 64", st.Services[0].Connected)
			}
		}
	})
	wg.Wait()
	close(stopSampling)
	sampled.Wait()
	if served.Load() != concurrentClients {
		t.Errorf("%d of %d clients served, want all", served.Load(), concurrentClients)
	}
	if p := peak.Load(); p > 64 {
		t.Errorf("%d clients served at once, above max_connections = 64", p)
	}
	testutil.WaitFor(t, 30*time.Second, "every instance to end", func() bool {
		s := d.service("queued")
		return s.Connected == 0 && s.Accepted == concurrentClients
	})
	if s := d.service("queued"); s.Refused != 0 {
		t.Errorf("refused %d with overflow = \"wait\", want 0", s.Refused)
	}
	d.stop()
}

// TestMaxConnectionsPerSource: a client is its address cut to
// source_prefix_v4 bits; each may hold max_connections_per_source.
func TestMaxConnectionsPerSource(t *testing.T) {
	d := startDaemon(t, `
service "host" {
  listen                     = ["127.0.0.1:{{PORT0}}"]
  max_connections_per_source = 2
  exec {
    `+prog("greet")+`
  }
}
service "net24" {
  listen                     = ["127.0.0.1:{{PORT1}}"]
  max_connections_per_source = 2
  source_prefix_v4           = 24
  exec {
    `+prog("greet")+`
  }
}
`, daemonOpts{ports: 2})
	steps := []struct {
		port   int
		from   string
		served bool
	}{
		{0, "127.0.0.1", true}, {0, "127.0.0.1", true}, {0, "127.0.0.1", false},
		{0, "127.0.0.2", true}, {0, "127.0.0.2", true}, {0, "127.0.0.2", false},
		{1, "127.0.0.1", true}, {1, "127.0.0.2", true}, {1, "127.0.0.3", false},
		{1, "127.0.1.1", true},
	}
	var open []net.Conn
	for i, s := range steps {
		c := dialFrom(t, s.from, d.addr(s.port))
		if got := greeted(t, c); got != s.served {
			t.Errorf("step %d: client %s on service %d served = %v, want %v", i, s.from, s.port, got, s.served)
		}
		if c != nil {
			open = append(open, c)
		}
	}
	for name, want := range map[string]uint64{"host": 2, "net24": 1} {
		if s := d.service(name); s.RefusedReasons["per_source"] != want {
			t.Errorf("%s: refused %v, want %d per_source", name, s.RefusedReasons, want)
		}
	}
	// Closing a connection frees its client's slot.
	open[0].Close()
	testutil.WaitFor(t, 20*time.Second, "the first instance to end", func() bool { return d.service("host").Connected == 3 })
	c := dialFrom(t, "127.0.0.1", d.addr(0))
	if !greeted(t, c) {
		t.Error("a client was refused after one of its connections ended")
	}
	open = append(open, c)
	closeAll(open)
	d.stop()
}

// TestAllowDeny: only allowed clients are served; deny wins over allow.
func TestAllowDeny(t *testing.T) {
	d := startDaemon(t, `
service "allowlist" {
  listen = ["127.0.0.1:{{PORT0}}"]
  allow  = ["127.0.0.2/32", "::1"]
  exec {
    `+prog("greet")+`
  }
}
service "denywins" {
  listen = ["127.0.0.1:{{PORT1}}"]
  allow  = ["127.0.0.0/8"]
  deny   = ["127.0.0.3"]
  exec {
    `+prog("greet")+`
  }
}
`, daemonOpts{ports: 2})
	var open []net.Conn
	for _, s := range []struct {
		port   int
		from   string
		served bool
	}{
		{0, "127.0.0.1", false}, {0, "127.0.0.2", true},
		{1, "127.0.0.3", false}, {1, "127.0.0.4", true},
	} {
		c := dialFrom(t, s.from, d.addr(s.port))
		if got := greeted(t, c); got != s.served {
			t.Errorf("client %s on service %d: served = %v, want %v", s.from, s.port, got, s.served)
		}
		if c != nil {
			open = append(open, c)
		}
	}
	for _, name := range []string{"allowlist", "denywins"} {
		if s := d.service(name); s.Refused != 1 || s.RefusedReasons["deny"] != 1 {
			t.Errorf("%s: refused %d %v, want 1 (deny)", name, s.Refused, s.RefusedReasons)
		}
	}
	closeAll(open)
	d.stop()
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// greetTimeout bounds the wait for a greeting: spawning 64 programs at
// once on 2 busy cores takes a while, but not this long.
const greetTimeout = 30 * time.Second
