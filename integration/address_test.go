package integration

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAddressForms listens on every CONTRACT address form this issue
// covers (not udp://, systemd:, fd: or handoff:) and connects to each.
func TestAddressForms(t *testing.T) {
	v6 := haveIPv6()
	abstract := fmt.Sprintf("acd-it-%d-%d", os.Getpid(), time.Now().UnixNano())
	type form struct {
		listen string
		dial   []string // {{PORTn}} expanded; "-" prefix: must be refused
		v6     bool     // needs IPv6
	}
	forms := map[string]form{
		"port":     {listen: "{{PORT0}}", dial: []string{"127.0.0.1:{{PORT0}}", "[::1]:{{PORT0}}"}},
		"colon":    {listen: ":{{PORT1}}", dial: []string{"127.0.0.1:{{PORT1}}"}},
		"wild4":    {listen: "0.0.0.0:{{PORT2}}", dial: []string{"127.0.0.1:{{PORT2}}"}},
		"wild6":    {listen: "[::]:{{PORT3}}", dial: []string{"[::1]:{{PORT3}}", "127.0.0.1:{{PORT3}}"}, v6: true},
		"v4":       {listen: "127.0.0.1:{{PORT4}}", dial: []string{"127.0.0.1:{{PORT4}}"}},
		"v6":       {listen: "[::1]:{{PORT5}}", dial: []string{"[::1]:{{PORT5}}"}, v6: true},
		"tcpurl":   {listen: "tcp://127.0.0.1:{{PORT6}}", dial: []string{"127.0.0.1:{{PORT6}}"}},
		"tcp4":     {listen: "tcp4://0.0.0.0:{{PORT7}}", dial: []string{"127.0.0.1:{{PORT7}}", "-[::1]:{{PORT7}}"}},
		"tcp6":     {listen: "tcp6://[::]:{{PORT8}}", dial: []string{"[::1]:{{PORT8}}", "-127.0.0.1:{{PORT8}}"}, v6: true},
		"tcp6one":  {listen: "tcp6://[::1]:{{PORT9}}", dial: []string{"[::1]:{{PORT9}}"}, v6: true},
		"path":     {listen: "{{DIR}}/path.sock", dial: []string{"{{DIR}}/path.sock"}},
		"unixurl":  {listen: "unix://{{DIR}}/url.sock", dial: []string{"{{DIR}}/url.sock"}},
		"abstract": {listen: "@" + abstract, dial: []string{"@" + abstract}},
		"absurl":   {listen: "unix://@" + abstract + "-url", dial: []string{"@" + abstract + "-url"}},
	}
	var cfg strings.Builder
	for name, f := range forms {
		if f.v6 && !v6 {
			continue
		}
		fmt.Fprintf(&cfg, "service %q {\n  listen = [%q]\n  exec {\n    %s  }\n}\n", name, f.listen, prog("env"))
	}
	d := startDaemon(t, cfg.String(), daemonOpts{ports: 10})
	for name, f := range forms {
		if f.v6 && !v6 {
			continue
		}
		for _, a := range f.dial {
			a = d.expand(a)
			if !v6 && strings.Contains(a, "[::1]") {
				continue
			}
			if refused, ok := strings.CutPrefix(a, "-"); ok {
				if c, err := net.DialTimeout("tcp", refused, 5*time.Second); err == nil {
					c.Close()
					t.Errorf("%s: listen %q also accepts on %s, want one family only", name, f.listen, refused)
				}
				continue
			}
			c := dial(t, a)
			env := envOf(t, c)
			if env["ACCEPTD_SERVICE"] != name {
				t.Errorf("dial %s: served by %q, want %q", a, env["ACCEPTD_SERVICE"], name)
			}
		}
	}
	st, err := d.statusErr()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Services {
		if len(s.Listen) != 1 {
			t.Errorf("status of %s lists %v, want one address", s.Name, s.Listen)
		}
	}
	d.stop(filepath.Join(d.dir, "path.sock"), filepath.Join(d.dir, "url.sock"))
	for _, a := range []string{"@" + abstract, "@" + abstract + "-url"} {
		if c, err := net.DialTimeout("unix", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts after acceptd stopped", a)
		}
	}
}

// runFailing runs `acceptd run` on body (with a control socket in a
// fresh short directory) and expects it to exit 1 within 30s; it returns
// the directory and acceptd's output.
func runFailing(t *testing.T, body string, ports []int) (dir, out string) {
	t.Helper()
	d := &daemon{t: t, ports: ports, out: &syncBuffer{}}
	if len(d.ports) == 0 {
		d.ports = []int{freePort(t)}
	}
	d.dir = shortDir(t)
	src := fmt.Sprintf("control {\n  socket = %q\n}\n\n%s", filepath.Join(d.dir, "control.sock"), d.expand(body))
	path := filepath.Join(d.dir, "acceptd.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := runAcceptd(t, "run", "-config", path)
	if code != 1 {
		t.Fatalf("acceptd run exited %d, want 1; config:\n%s\noutput:\n%s", code, src, out)
	}
	if _, err := os.Lstat(filepath.Join(d.dir, "control.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left behind by a failed start (%v)", err)
	}
	return d.dir, out
}

// mustBeFree fails unless addr (host:port or a UNIX path) is free again:
// a port can be bound, a path does not exist.
func mustBeFree(t *testing.T, addr string) {
	t.Helper()
	if strings.HasPrefix(addr, "/") {
		if _, err := os.Lstat(addr); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a failed start (%v)", addr, err)
		}
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("%s is not free after a failed start: %v", addr, err)
		return
	}
	ln.Close()
}

// TestUnixSocketPathConflicts: a regular file or a live socket at a listen
// path is an error at start and left alone; a stale socket is replaced.
func TestUnixSocketPathConflicts(t *testing.T) {
	t.Run("regular-file", func(t *testing.T) {
		dir := shortDir(t)
		path := filepath.Join(dir, "file.sock")
		if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, out := runFailing(t, fmt.Sprintf("service \"f\" {\n  listen = [%q]\n  exec {\n    %s  }\n}\n", path, prog("line")), nil)
		if !strings.Contains(out, path) {
			t.Errorf("error does not name %s:\n%s", path, out)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
			t.Errorf("the regular file at %s was changed: %q, %v", path, b, err)
		}
	})
	t.Run("live-socket", func(t *testing.T) {
		dir := shortDir(t)
		path := filepath.Join(dir, "live.sock")
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, out := runFailing(t, fmt.Sprintf("service \"l\" {\n  listen = [%q]\n  exec {\n    %s  }\n}\n", path, prog("line")), nil)
		if !strings.Contains(out, path) {
			t.Errorf("error does not name %s:\n%s", path, out)
		}
		// The other daemon's socket still works.
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close()
			}
		}()
		c, err := net.DialTimeout("unix", path, 5*time.Second)
		if err != nil {
			t.Fatalf("the live socket at %s was taken over: %v", path, err)
		}
		c.Close()
	})
	t.Run("stale-socket", func(t *testing.T) {
		d := startDaemon(t, `
service "s" {
  listen = ["{{DIR}}/stale.sock"]
  exec {
    `+prog("line")+`
  }
}
`, daemonOpts{})
		path := filepath.Join(d.dir, "stale.sock")
		d.stop(path)
		// Leave a socket file nobody listens on, as a crash would.
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		ln.Close()
		if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
			t.Fatalf("no stale socket at %s: %v", path, err)
		}
		d2 := startDaemon(t, "service \"s\" {\n  listen = [\""+path+"\"]\n  exec {\n    "+prog("line")+"  }\n}\n", daemonOpts{})
		if got := request(t, path, ""); got != "hi\n" {
			t.Errorf("after replacing a stale socket: got %q, want %q", got, "hi\n")
		}
		d2.stop(path)
	})
}

// TestRunBadConfigBindsNothing: a configuration with an error, or with an
// address that cannot be bound, makes `acceptd run` exit 1 with every
// other listener of the file closed and its socket file removed.
func TestRunBadConfigBindsNothing(t *testing.T) {
	t.Run("invalid", func(t *testing.T) {
		p := freePort(t)
		dir, out := runFailing(t, `
service "good" {
  listen = ["127.0.0.1:{{PORT}}", "{{DIR}}/good.sock"]
  exec {
    command = ["/bin/cat"]
  }
}
service "bad" {
  listen = ["127.0.0.1:99999"]
  exec {
    command = ["/bin/cat"]
  }
}
`, []int{p})
		if !strings.Contains(out, "acceptd.hcl:") || !strings.Contains(out, "99999") {
			t.Errorf("output does not name the file, line and the bad port:\n%s", out)
		}
		mustBeFree(t, fmt.Sprintf("127.0.0.1:%d", p))
		mustBeFree(t, filepath.Join(dir, "good.sock"))
	})
	t.Run("bind-fails", func(t *testing.T) {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		p := freePort(t)
		dir, out := runFailing(t, fmt.Sprintf(`
service "first" {
  listen = ["127.0.0.1:{{PORT}}", "{{DIR}}/first.sock"]
  exec {
    command = ["/bin/cat"]
  }
}
service "second" {
  listen = [%q]
  exec {
    command = ["/bin/cat"]
  }
}
`, taken.Addr().String()), []int{p})
		if !strings.Contains(out, taken.Addr().String()) || !strings.Contains(out, "address already in use") {
			t.Errorf("output does not name the address and why it could not be bound:\n%s", out)
		}
		mustBeFree(t, fmt.Sprintf("127.0.0.1:%d", p))
		mustBeFree(t, filepath.Join(dir, "first.sock"))
	})
	t.Run("no-free-bind", func(t *testing.T) {
		// 192.0.2.1 (TEST-NET-1) is on no interface: without free_bind
		// the bind fails. Nothing is sent anywhere.
		_, out := runFailing(t, `
service "nofreebind" {
  listen = ["192.0.2.1:{{PORT}}"]
  exec {
    command = ["/bin/cat"]
  }
}
`, nil)
		if !strings.Contains(out, "192.0.2.1") {
			t.Errorf("output does not name the address:\n%s", out)
		}
	})
}

// sockoptOfListener reads a socket option of acceptd's listening socket
// on TCP port, by copying the fd out of the daemon with pidfd_getfd.
func sockoptOfListener(t *testing.T, pid, port, level, opt int) int {
	t.Helper()
	fd := listenerFD(t, pid, port)
	v, err := syscall.GetsockoptInt(fd, level, opt)
	syscall.Close(fd)
	if err != nil {
		t.Fatalf("getsockopt(%d, %d) on acceptd's listener: %v", level, opt, err)
	}
	return v
}
