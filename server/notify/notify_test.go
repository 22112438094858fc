package notify

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// env is a fake environment: getenv reads it, unsetenv deletes from it.
type env map[string]string

func (e env) getenv(k string) string { return e[k] }
func (e env) unsetenv(k string) error {
	delete(e, k)
	return nil
}

func shortDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 80 {
		var err error
		if dir, err = os.MkdirTemp("", "acd"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return dir
}

// manager is the test's stand-in for systemd: a unixgram socket that
// collects datagrams.
func manager(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	return string(buf[:n])
}

// noMore checks that nothing else was sent.
func noMore(t *testing.T, c *net.UnixConn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	buf := make([]byte, 4096)
	if n, err := c.Read(buf); err == nil {
		t.Errorf("unexpected datagram %q", buf[:n])
	}
}

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// TestDatagrams sends each notification to a path and to an abstract
// socket and checks the exact bytes.
func TestDatagrams(t *testing.T) {
	for _, where := range []string{"path", "abstract"} {
		t.Run(where, func(t *testing.T) {
			addr := filepath.Join(shortDir(t), "notify")
			if where == "abstract" {
				addr = "@acd-notify-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			}
			m := manager(t, addr)
			e := env{"NOTIFY_SOCKET": addr}
			n := New(e.getenv, e.unsetenv, os.Getpid())
			if !n.Enabled() || len(n.Warnings()) != 0 {
				t.Fatalf("Enabled %v, warnings %q; want enabled, none", n.Enabled(), n.Warnings())
			}
			if len(e) != 0 {
				t.Errorf("left in the environment: %v", e)
			}
			tests := []struct {
				name string
				send func() error
				want string
			}{
				{"ready", func() error { return n.Ready("serving 2 services") }, "READY=1\nSTATUS=serving 2 services"},
				{"ready bare", func() error { return n.Ready("") }, "READY=1"},
				{"status", func() error { return n.Status("reloading config") }, "STATUS=reloading config"},
				{"status one line", func() error { return n.Status("a\nREADY=1\x00b") }, "STATUS=a READY=1 b"},
				{"status empty", func() error { return n.Status("") }, "STATUS="},
				{"stopping", n.Stopping, "STOPPING=1"},
			}
			for _, tt := range tests {
				if err := tt.send(); err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				if got := recv(t, m); got != tt.want {
					t.Errorf("%s sent %q; want %q", tt.name, got, tt.want)
				}
			}

			before := monotonicUsec(t)
			if err := n.Reloading(); err != nil {
				t.Fatal(err)
			}
			after := monotonicUsec(t)
			got := recv(t, m)
			match := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=([0-9]+)$`).FindStringSubmatch(got)
			if match == nil {
				t.Fatalf("Reloading sent %q; want RELOADING=1 and MONOTONIC_USEC", got)
			}
			if usec, _ := strconv.ParseInt(match[1], 10, 64); usec < before || usec > after {
				t.Errorf("MONOTONIC_USEC=%d; want between %d and %d", usec, before, after)
			}
			noMore(t, m)
		})
	}
}

func TestDisabled(t *testing.T) {
	e := env{"WATCHDOG_USEC": "1000"}
	n := New(e.getenv, e.unsetenv, os.Getpid())
	if n.Enabled() || n.WatchdogInterval() != 0 {
		t.Errorf("Enabled %v, watchdog %v; want disabled", n.Enabled(), n.WatchdogInterval())
	}
	for name, f := range map[string]func() error{
		"ready": func() error { return n.Ready("x") }, "status": func() error { return n.Status("x") },
		"reloading": n.Reloading, "stopping": n.Stopping,
	} {
		if err := f(); err != nil {
			t.Errorf("%s without NOTIFY_SOCKET: %v; want nil", name, err)
		}
	}
	n.RunWatchdog(t.Context(), func(err error) { t.Errorf("onError(%v) without a watchdog", err) })
	if w := n.Warnings(); len(w) != 1 || !strings.Contains(w[0], "without NOTIFY_SOCKET") {
		t.Errorf("warnings %q; want WATCHDOG_USEC without NOTIFY_SOCKET", w)
	}
}

func TestUnusableSocket(t *testing.T) {
	missing := filepath.Join(shortDir(t), "nobody")
	for _, tt := range []struct {
		socket, want string
		warn         bool
	}{
		{missing, "notify " + missing + ": dial unixgram", false},
		{"run/notify", "only an absolute path", true},
		{"vsock:2:1234", "only an absolute path", true},
		{"@", "only an absolute path", true},
	} {
		t.Run(tt.socket, func(t *testing.T) {
			e := env{"NOTIFY_SOCKET": tt.socket}
			n := New(e.getenv, e.unsetenv, os.Getpid())
			if !n.Enabled() {
				t.Errorf("Enabled = false; a manager expects notifications")
			}
			if err := n.Ready(""); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Ready error = %v; want %q", err, tt.want)
			}
			if got := len(n.Warnings()) != 0; got != tt.warn {
				t.Errorf("warnings %q; want some: %v", n.Warnings(), tt.warn)
			}
		})
	}
}

func TestWatchdogEnv(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, tt := range []struct {
		name     string
		usec     string
		pid      string
		want     time.Duration
		wantWarn string
	}{
		{"unset", "", "", 0, ""},
		{"for us", "30000000", self, 30 * time.Second, ""},
		{"no pid", "2000000", "", 2 * time.Second, ""},
		{"other pid", "2000000", "1", 0, "is not this process"},
		{"pid words", "2000000", "me", 0, "is not this process"},
		{"zero", "0", self, 0, "not a positive number"},
		{"negative", "-5", self, 0, "not a positive number"},
		{"words", "soon", self, 0, "not a positive number"},
		{"too large", "18446744073709551615", self, 0, "too large"},
		{"overflow", "99999999999999999999999", self, 0, "too large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := env{"NOTIFY_SOCKET": "/nonexistent/notify", "WATCHDOG_USEC": tt.usec, "WATCHDOG_PID": tt.pid}
			n := New(e.getenv, e.unsetenv, os.Getpid())
			if got := n.WatchdogInterval(); got != tt.want {
				t.Errorf("WatchdogInterval = %v; want %v", got, tt.want)
			}
			warns := strings.Join(n.Warnings(), "\n")
			if (tt.wantWarn == "") != (warns == "") || !strings.Contains(warns, tt.wantWarn) {
				t.Errorf("warnings %q; want %q", warns, tt.wantWarn)
			}
			if len(e) != 0 {
				t.Errorf("left in the environment: %v", e)
			}
		})
	}
}

// TestWatchdogPings runs the watchdog with a 20 ms interval and checks the
// pings, that failures are reported without stopping it, and that it ends
// with its context.
func TestWatchdogPings(t *testing.T) {
	addr := filepath.Join(shortDir(t), "notify")
	m := manager(t, addr)
	e := env{"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "20000", "WATCHDOG_PID": strconv.Itoa(os.Getpid())}
	n := New(e.getenv, e.unsetenv, os.Getpid())
	if n.WatchdogInterval() != 20*time.Millisecond {
		t.Fatalf("WatchdogInterval = %v; want 20ms", n.WatchdogInterval())
	}

	var mu sync.Mutex
	var failures []error
	failed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.RunWatchdog(ctx, func(err error) {
			mu.Lock()
			failures = append(failures, err)
			mu.Unlock()
			select {
			case failed <- struct{}{}:
			default:
			}
		})
	}()
	for range 3 {
		if got := recv(t, m); got != "WATCHDOG=1" {
			t.Errorf("ping %q; want WATCHDOG=1", got)
		}
	}
	// The manager goes away: pings fail, are reported, and go on.
	m.Close()
	os.Remove(addr)
	select {
	case <-failed:
	case <-time.After(10 * time.Second):
		t.Fatal("no failed ping reported after the manager went away")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RunWatchdog did not return after its context ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failures) == 0 || !errors.Is(failures[0], unix.ENOENT) {
		t.Errorf("failures %v; want ENOENT", failures)
	}
}

func TestWatchdogOtherPID(t *testing.T) {
	addr := filepath.Join(shortDir(t), "notify")
	m := manager(t, addr)
	e := env{"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}
	n := New(e.getenv, e.unsetenv, os.Getpid())
	n.RunWatchdog(t.Context(), nil) // returns at once
	noMore(t, m)
}
