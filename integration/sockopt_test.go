package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/internal/testutil"
)

func shortDir(t *testing.T) string { return testutil.ShortDir(t) }

// runAcceptd runs the acceptd binary with args and no stdin, and returns
// its exit status and combined output.
func runAcceptd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, acceptdBin(), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), out.String()
	}
	t.Fatalf("acceptd %v: %v\n%s", args, err, out.String())
	return -1, ""
}

// listenerFD finds acceptd's listening socket on TCP port (through the
// socket inode in /proc/net/tcp{,6}) and returns a copy of it made with
// pidfd_getfd, so that its options can be read from outside. It skips
// the test when the kernel does not allow that.
func listenerFD(t *testing.T, pid, port int) int {
	t.Helper()
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
				inodes[fs[9]] = true
			}
		}
	}
	fds, err := testutil.FDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	for n, target := range fds {
		ino, ok := strings.CutPrefix(target, "socket:[")
		if !ok || !inodes[strings.TrimSuffix(ino, "]")] {
			continue
		}
		pidfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Skipf("pidfd_open: %v", err)
		}
		defer unix.Close(pidfd)
		fd, err := unix.PidfdGetfd(pidfd, n, 0)
		if err != nil {
			t.Skipf("pidfd_getfd (needed to read acceptd's socket options): %v", err)
		}
		return fd
	}
	t.Fatalf("no listening socket of acceptd (pid %d) on port %d", pid, port)
	return -1
}

// TestSocketOptions checks the socket block from outside: options of the
// listening socket (read through a copy of its fd), of the accepted
// socket (read by the child on its stdin), and the backlog (as ss shows
// it).
func TestSocketOptions(t *testing.T) {
	d := startDaemon(t, `
service "opts" {
  listen = ["127.0.0.1:{{PORT0}}"]
  socket {
    backlog    = 17
    reuse_port = true
    free_bind  = true
    keepalive  = true
    no_delay   = true
  }
  exec {
    `+prog("fds")+`
  }
}
service "plain" {
  listen = ["127.0.0.1:{{PORT1}}"]
  exec {
    `+prog("fds")+`
  }
}
service "freebind" {
  # 192.0.2.1 (TEST-NET-1) is on no interface; free_bind lets it bind.
  listen = ["192.0.2.1:{{PORT2}}"]
  socket {
    free_bind = true
  }
  exec {
    `+prog("fds")+`
  }
}
`, daemonOpts{ports: 3})
	r := fdsOf(t, d.addr(0))
	if r.KeepAlive == 0 || r.NoDelay == 0 {
		t.Errorf("keepalive = true, no_delay = true: child's socket has SO_KEEPALIVE=%d TCP_NODELAY=%d", r.KeepAlive, r.NoDelay)
	}
	r = fdsOf(t, d.addr(1))
	if r.KeepAlive != 0 || r.NoDelay != 0 {
		t.Errorf("defaults: child's socket has SO_KEEPALIVE=%d TCP_NODELAY=%d, want 0 and 0", r.KeepAlive, r.NoDelay)
	}

	// reuse_port: another socket with SO_REUSEPORT may bind the same
	// address; without it, it may not.
	for i, want := range []bool{true, false} {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
		}}
		ln, err := lc.Listen(context.Background(), "tcp", d.addr(i))
		if err == nil {
			ln.Close()
		}
		if got := err == nil; got != want {
			t.Errorf("service %d (reuse_port %v): a second SO_REUSEPORT bind of %s: %v", i, want, d.addr(i), err)
		}
	}

	if v := sockoptOfListener(t, d.pid(), d.ports[0], unix.SOL_IP, unix.IP_FREEBIND); v == 0 {
		t.Error("free_bind = true: IP_FREEBIND is off on the listener")
	}
	if v := sockoptOfListener(t, d.pid(), d.ports[1], unix.SOL_IP, unix.IP_FREEBIND); v != 0 {
		t.Error("default: IP_FREEBIND is on on the listener")
	}
	if v := sockoptOfListener(t, d.pid(), d.ports[1], unix.SOL_SOCKET, unix.SO_REUSEPORT); v != 0 {
		t.Error("default: SO_REUSEPORT is on on the listener")
	}

	if ss, err := exec.LookPath("ss"); err == nil {
		out, err := exec.Command(ss, "-ltnH", fmt.Sprintf("sport = :%d", d.ports[0])).Output()
		if err != nil {
			t.Fatalf("ss: %v", err)
		}
		// State Recv-Q Send-Q Local Peer: Send-Q of a listener is its backlog.
		f := strings.Fields(string(out))
		if len(f) < 3 || f[2] != "17" {
			t.Errorf("backlog = 17: ss shows %q", out)
		}
	} else {
		t.Log("ss (iproute2) not installed; backlog not checked")
	}
	d.stop()
}

// TestSocketOptionsIPv6Only: ipv6_only = true on [::] leaves IPv4 out;
// without it, [::] takes both families.
func TestSocketOptionsIPv6Only(t *testing.T) {
	requireIPv6(t)
	d := startDaemon(t, `
service "v6only" {
  listen = ["[::]:{{PORT0}}"]
  socket {
    ipv6_only = true
  }
  exec {
    `+prog("line")+`
  }
}
service "dual" {
  listen = ["[::]:{{PORT1}}"]
  exec {
    `+prog("line")+`
  }
}
`, daemonOpts{ports: 2})
	if got := request(t, fmt.Sprintf("[::1]:%d", d.ports[0]), ""); got != "hi\n" {
		t.Errorf("ipv6_only over ::1: got %q", got)
	}
	if c, err := net.DialTimeout("tcp", d.addr(0), 5*time.Second); err == nil {
		c.Close()
		t.Error("ipv6_only = true still accepts IPv4")
	}
	if got := request(t, d.addr(1), ""); got != "hi\n" {
		t.Errorf("[::] without ipv6_only over IPv4: got %q", got)
	}
	if v := sockoptOfListener(t, d.pid(), d.ports[0], unix.SOL_IPV6, unix.IPV6_V6ONLY); v == 0 {
		t.Error("ipv6_only = true: IPV6_V6ONLY is off")
	}
	d.stop()
}

// TestSocketOptionsTransparent needs CAP_NET_ADMIN.
func TestSocketOptionsTransparent(t *testing.T) {
	testutil.RequireRoot(t)
	d := startDaemon(t, `
service "tproxy" {
  listen = ["127.0.0.1:{{PORT}}"]
  socket {
    transparent = true
  }
  exec {
    `+prog("line")+`
  }
}
`, daemonOpts{})
	if v := sockoptOfListener(t, d.pid(), d.ports[0], unix.SOL_IP, unix.IP_TRANSPARENT); v == 0 {
		t.Error("transparent = true: IP_TRANSPARENT is off")
	}
	if got := request(t, d.addr(0), ""); got != "hi\n" {
		t.Errorf("got %q", got)
	}
	d.stop()
}

// TestUnixSocketFileMode: mode, owner and group of the socket file are as
// configured (names resolved like systemd's SocketUser=/SocketGroup=).
func TestUnixSocketFileMode(t *testing.T) {
	testutil.RequireRoot(t)
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Skipf("no group %s: %v", u.Gid, err)
	}
	d := startDaemon(t, fmt.Sprintf(`
service "modes" {
  listen = ["{{DIR}}/m.sock"]
  socket {
    mode  = "0660"
    owner = "nobody"
    group = %q
  }
  exec {
    %s  }
}
service "defaults" {
  listen = ["{{DIR}}/d.sock"]
  exec {
    %s  }
}
`, g.Name, prog("line"), prog("line")), daemonOpts{})
	path := filepath.Join(d.dir, "m.sock")
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("%s has mode %v, want a socket with 0660", path, fi.Mode())
	}
	if strconv.Itoa(int(st.Uid)) != u.Uid || strconv.Itoa(int(st.Gid)) != g.Gid {
		t.Errorf("%s is owned by %d:%d, want nobody:%s (%s:%s)", path, st.Uid, st.Gid, g.Name, u.Uid, g.Gid)
	}
	def := filepath.Join(d.dir, "d.sock")
	if fi, err := os.Lstat(def); err != nil || fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
		t.Errorf("%s without owner: %v, %v; want acceptd's user", def, fi, err)
	}
	if got := request(t, path, ""); got != "hi\n" {
		t.Errorf("got %q", got)
	}
	d.stop(path, def)
}
