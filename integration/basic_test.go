package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHelloWorldExample runs examples/hello-world.hcl as README says,
// from the repository root, on a free port instead of 31337.
func TestHelloWorldExample(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(bins.root, "examples", "hello-world.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(acceptdBin(), "check", "-config", filepath.Join(bins.root, "examples", "hello-world.hcl")).CombinedOutput()
	if err != nil {
		t.Fatalf("acceptd check examples/hello-world.hcl: %v\n%s", err, out)
	}
	body := strings.NewReplacer(
		`"31337"`, `"{{PORT}}"`,
		`"/tmp/acceptd-hello/control.sock"`, `"{{DIR}}/control.sock"`,
	).Replace(string(src))
	if body == string(src) {
		t.Fatal("examples/hello-world.hcl no longer listens on 31337 with its control socket in /tmp/acceptd-hello; update this test")
	}
	d := startDaemon(t, body, daemonOpts{raw: true, dir: bins.root})
	got := request(t, d.addr(0), "")
	want := fmt.Sprintf("Hello World from hello@0-127.0.0.1:%d-", d.ports[0])
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "\n") {
		t.Errorf("hello-world answered %q, want %q...", got, want)
	}
	d.stop()
}

// envOf connects to addr, reads the "env" program's report and returns it
// as a map.
func envOf(t *testing.T, c net.Conn) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(readAll(t, c)), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("env line %q has no '='", line)
		}
		env[k] = v
	}
	return env
}

func diffEnv(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("child environment lacks %s (want %q)", k, v)
		} else if g != v {
			t.Errorf("child environment has %s=%q, want %q", k, g, v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("child environment has %s=%q, which it should not", k, v)
		}
	}
}

// systemdPath is the PATH a child gets (systemd's default for services).
const systemdPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// TestEnvironmentTCP checks the complete environment of a TCP instance
// against CONTRACT "What a per-connection program gets": the listed names,
// the configured environment, and nothing of acceptd's own.
func TestEnvironmentTCP(t *testing.T) {
	t.Setenv("ACCEPTD_SECRET_OF_THE_PARENT", "leak")
	d := startDaemon(t, `
service "envtcp" {
  listen = ["127.0.0.1:{{PORT}}"]
  exec {
    command     = ["{{PROG}}"]
    environment = { ACCEPTD_TEST_PROG = "env", GREETING = "hi there" }
  }
}
`, daemonOpts{})
	for seq := 0; seq < 2; seq++ {
		c := dial(t, d.addr(0))
		cport := strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port)
		port := strconv.Itoa(d.ports[0])
		diffEnv(t, envOf(t, c), map[string]string{
			"PATH":              systemdPath,
			"REMOTE_ADDR":       "127.0.0.1",
			"REMOTE_PORT":       cport,
			"PROTO":             "TCP",
			"TCPREMOTEIP":       "127.0.0.1",
			"TCPREMOTEPORT":     cport,
			"TCPLOCALIP":        "127.0.0.1",
			"TCPLOCALPORT":      port,
			"ACCEPTD_SERVICE":   "envtcp",
			"ACCEPTD_INSTANCE":  fmt.Sprintf("envtcp@%d-127.0.0.1:%s-127.0.0.1:%s", seq, port, cport),
			"ACCEPTD_TEST_PROG": "env",
			"GREETING":          "hi there",
		})
	}
	d.stop()
}

// TestEnvironmentWildcard: a program behind a wildcard listener learns
// the address the client reached (a listener bound to one address gives
// its own to every connection without asking the kernel, one that is not
// must ask per connection).
func TestEnvironmentWildcard(t *testing.T) {
	listen := `"0.0.0.0:{{PORT}}"`
	if haveIPv6() {
		listen += `, "[::]:{{PORT}}"`
	}
	d := startDaemon(t, `
service "wild" {
  listen = [`+listen+`]
  socket { ipv6_only = true }
  exec {
    `+prog("env")+`
  }
}
`, daemonOpts{})
	check := func(dialIP, localIP string, port int) {
		t.Helper()
		c := dial(t, net.JoinHostPort(dialIP, strconv.Itoa(port)))
		env := envOf(t, c)
		if env["TCPLOCALIP"] != localIP || env["TCPLOCALPORT"] != strconv.Itoa(port) {
			t.Errorf("dialled %s port %d: TCPLOCALIP=%q TCPLOCALPORT=%q", dialIP, port, env["TCPLOCALIP"], env["TCPLOCALPORT"])
		}
	}
	check("127.0.0.1", "127.0.0.1", d.ports[0])
	check("127.0.0.2", "127.0.0.2", d.ports[0])
	if haveIPv6() {
		check("::1", "::1", d.ports[0])
	}
	d.stop()
}

// TestEnvironmentTCP6 checks the addresses of an IPv6 peer.
func TestEnvironmentTCP6(t *testing.T) {
	requireIPv6(t)
	d := startDaemon(t, `
service "env6" {
  listen = ["[::1]:{{PORT}}"]
  exec {
    `+prog("env")+`
  }
}
`, daemonOpts{})
	c := dial(t, fmt.Sprintf("[::1]:%d", d.ports[0]))
	cport := strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port)
	port := strconv.Itoa(d.ports[0])
	diffEnv(t, envOf(t, c), map[string]string{
		"PATH":              systemdPath,
		"REMOTE_ADDR":       "::1",
		"REMOTE_PORT":       cport,
		"PROTO":             "TCP",
		"TCPREMOTEIP":       "::1",
		"TCPREMOTEPORT":     cport,
		"TCPLOCALIP":        "::1",
		"TCPLOCALPORT":      port,
		"ACCEPTD_SERVICE":   "env6",
		"ACCEPTD_INSTANCE":  fmt.Sprintf("env6@0-[::1]:%s-[::1]:%s", port, cport),
		"ACCEPTD_TEST_PROG": "env",
	})
	d.stop()
}

// TestEnvironmentUnix checks a UNIX peer: credentials instead of ports,
// REMOTE_ADDR only when the client socket is bound to a path, and a PATH
// from the configuration replacing the default.
func TestEnvironmentUnix(t *testing.T) {
	d := startDaemon(t, `
service "envunix" {
  listen = ["{{DIR}}/env.sock"]
  exec {
    command     = ["{{PROG}}"]
    environment = { ACCEPTD_TEST_PROG = "env", PATH = "/bin" }
  }
}
`, daemonOpts{})
	sock := filepath.Join(d.dir, "env.sock")
	pid, uid, gid := strconv.Itoa(os.Getpid()), strconv.Itoa(os.Geteuid()), strconv.Itoa(os.Getegid())
	want := map[string]string{
		"PATH":              "/bin",
		"PROTO":             "UNIX",
		"UNIXREMOTEPID":     pid,
		"UNIXREMOTEEUID":    uid,
		"UNIXREMOTEEGID":    gid,
		"ACCEPTD_SERVICE":   "envunix",
		"ACCEPTD_INSTANCE":  "envunix@0-" + pid + "-" + uid,
		"ACCEPTD_TEST_PROG": "env",
	}
	diffEnv(t, envOf(t, dial(t, sock)), want)

	// A client bound to a path: REMOTE_ADDR is that path.
	client := filepath.Join(d.dir, "client.sock")
	c, err := net.DialUnix("unix", &net.UnixAddr{Name: client, Net: "unix"}, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want["REMOTE_ADDR"] = client
	want["ACCEPTD_INSTANCE"] = "envunix@1-" + pid + "-" + uid
	diffEnv(t, envOf(t, c), want)
	d.stop(sock)
}

func fdsOf(t *testing.T, addr string) fdReport {
	t.Helper()
	var r fdReport
	out := request(t, addr, "")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("fds program printed %q: %v", out, err)
	}
	return r
}

// TestChildFDs checks that a child holds fds 0, 1 and 2 only, the socket
// on 0 and 1 in blocking mode, and that it leads its own process group.
// Socket options default to inetd's: no keepalive, Nagle on.
func TestChildFDs(t *testing.T) {
	d := startDaemon(t, `
service "fds" {
  listen = ["127.0.0.1:{{PORT}}", "{{DIR}}/fds.sock"]
  exec {
    `+prog("fds")+`
  }
}
service "fdsnull" {
  listen = ["127.0.0.1:{{PORT1}}"]
  exec {
    `+prog("fds")+`
    stderr = "null"
  }
}
service "fdssocket" {
  listen = ["127.0.0.1:{{PORT2}}"]
  exec {
    `+prog("fds")+`
    stderr = "socket"
  }
}
`, daemonOpts{ports: 3})
	check := func(name, addr, stderrWant string) fdReport {
		t.Helper()
		r := fdsOf(t, addr)
		if len(r.FDs) != 3 || r.FDs["0"] == "" || r.FDs["1"] == "" || r.FDs["2"] == "" {
			t.Errorf("%s: child has fds %v, want exactly 0, 1 and 2", name, r.FDs)
		}
		if !strings.HasPrefix(r.FDs["0"], "socket:") || r.FDs["0"] != r.FDs["1"] {
			t.Errorf("%s: child's stdin/stdout are %q/%q, want the same socket", name, r.FDs["0"], r.FDs["1"])
		}
		switch stderrWant {
		case "socket":
			if r.FDs["2"] != r.FDs["0"] {
				t.Errorf("%s: stderr = %q, want the socket %q", name, r.FDs["2"], r.FDs["0"])
			}
		default:
			if !strings.HasPrefix(r.FDs["2"], stderrWant) {
				t.Errorf("%s: stderr = %q, want %s...", name, r.FDs["2"], stderrWant)
			}
		}
		if r.Nonblock {
			t.Errorf("%s: child's stdin is O_NONBLOCK; inetd programs expect a blocking socket", name)
		}
		if r.Pgid != r.Pid {
			t.Errorf("%s: child pid %d is in process group %d, want its own", name, r.Pid, r.Pgid)
		}
		return r
	}
	r := check("tcp", d.addr(0), "pipe:")
	if r.KeepAlive != 0 || r.NoDelay != 0 {
		t.Errorf("default socket options: SO_KEEPALIVE=%d TCP_NODELAY=%d, want 0 and 0 as inetd and systemd", r.KeepAlive, r.NoDelay)
	}
	check("unix", filepath.Join(d.dir, "fds.sock"), "pipe:")
	check("stderr=null", d.addr(1), "/dev/null")
	check("stderr=socket", d.addr(2), "socket")
	d.stop(filepath.Join(d.dir, "fds.sock"))
}

// TestEnvironmentProxied: with accept_proxy_protocol, a program's
// environment names the client its PROXY header declares, and its stdin
// starts after the header, both when the header is there when acceptd
// accepts (taken off the raw socket at once) and when it comes later (read
// on a goroutine of its own).
func TestEnvironmentProxied(t *testing.T) {
	d := startDaemon(t, `
service "pp" {
  listen                = ["127.0.0.1:{{PORT}}"]
  accept_proxy_protocol = true
  trusted_proxies       = ["127.0.0.0/8"]
  max_connections       = 1
  overflow              = "wait"
  exec {
    `+prog("env-after-line")+`
  }
}
`, daemonOpts{})
	header := func(i int) string {
		return fmt.Sprintf("PROXY TCP4 192.0.2.%d 198.51.100.7 5555 80\r\n", i)
	}
	want := func(seq, i int) map[string]string {
		ip := fmt.Sprintf("192.0.2.%d", i)
		return map[string]string{
			"PATH":              systemdPath,
			"REMOTE_ADDR":       ip,
			"REMOTE_PORT":       "5555",
			"PROTO":             "TCP",
			"TCPREMOTEIP":       ip,
			"TCPREMOTEPORT":     "5555",
			"TCPLOCALIP":        "198.51.100.7",
			"TCPLOCALPORT":      "80",
			"ACCEPTD_SERVICE":   "pp",
			"ACCEPTD_INSTANCE":  fmt.Sprintf("pp@%d-198.51.100.7:80-%s:5555", seq, ip),
			"ACCEPTD_TEST_PROG": "env-after-line",
		}
	}
	// Late: acceptd accepts before any byte has come.
	late := dial(t, d.addr(0))
	time.Sleep(200 * time.Millisecond)
	io.WriteString(late, header(1))
	time.Sleep(200 * time.Millisecond)
	// Its program holds the only slot now, but the accept loop went back
	// to accept while the header was on its way: a filler it accepts
	// there waits for the slot (overflow = "wait") and keeps the loop
	// from accepting more.
	filler := dial(t, d.addr(0))
	io.WriteString(filler, header(3)+"go\n")
	time.Sleep(200 * time.Millisecond)
	// Queued: it waits in the backlog with its header sent, so that the
	// header is all there when acceptd accepts it.
	queued := dial(t, d.addr(0))
	io.WriteString(queued, header(2)+"go\n")
	time.Sleep(200 * time.Millisecond)
	io.WriteString(late, "go\n")
	diffEnv(t, envOf(t, late), want(0, 1))
	// The filler and the queued client take the slot in either order.
	for _, c := range []struct {
		conn net.Conn
		i    int
	}{{queued, 2}, {filler, 3}} {
		env := envOf(t, c.conn)
		seq := 1
		if env["ACCEPTD_INSTANCE"] != want(1, c.i)["ACCEPTD_INSTANCE"] {
			seq = 2
		}
		diffEnv(t, env, want(seq, c.i))
	}
	d.stop()
}
