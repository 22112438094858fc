package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/server"
	"github.com/acceptd/acceptd/server/control"
)

// ctlBackend is a fake daemon behind a real control socket.
type ctlBackend struct {
	st  server.Status
	res server.ReloadResult
}

func (b *ctlBackend) Status() server.Status                      { return b.st }
func (b *ctlBackend) Reload(context.Context) server.ReloadResult { return b.res }

// startControl serves b on a control socket in a short temporary
// directory until the test ends, and returns the socket's path.
func startControl(t *testing.T, b control.Backend) string {
	t.Helper()
	// Cleanups run last-in first-out: this one after the server stopped.
	// One server per test (or subtest), or the check sees the others.
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir, err := os.MkdirTemp("", "acd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "control.sock")
	s, err := control.Listen(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, b, zaptest.NewLogger(t)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return path
}

func ctlStatus() server.Status {
	return server.Status{Services: []server.ServiceStatus{
		{
			Name: "hello", Mode: "exec", Listen: []string{"127.0.0.1:31337"},
			Accepted: 8, Connected: 1,
			Instances: []server.InstanceStatus{{
				Name: "hello@7-127.0.0.1:31337-127.0.0.1:50312", Pid: 4711, UID: 61184, GID: 61184,
				Remote: "127.0.0.1:50312", Local: "127.0.0.1:31337", Started: time.Now().Add(-time.Second),
			}},
		},
		{Name: "echo", Mode: "builtin", Listen: []string{"127.0.0.1:7"}},
	}}
}

func run(f func([]string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := f(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func status(args []string, stdout, stderr *bytes.Buffer) int { return runStatus(args, stdout, stderr) }
func reload(args []string, stdout, stderr *bytes.Buffer) int { return runReload(args, stdout, stderr) }

func TestStatusText(t *testing.T) {
	sock := startControl(t, &ctlBackend{st: ctlStatus()})
	for _, args := range [][]string{
		{"-control", sock},
		{"--control=" + sock},
	} {
		code, out, errOut := run(status, args...)
		if code != 0 || errOut != "" {
			t.Fatalf("status %v: exit %d, stderr %q", args, code, errOut)
		}
		if strings.Contains(out, "\x1b") {
			t.Errorf("colour escapes written to a non-terminal:\n%q", out)
		}
		for _, line := range []string{
			"● hello — exec (per connection)\n",
			"     Listen: 127.0.0.1:31337 (Stream)\n",
			"   Accepted: 8; Connected: 1; Refused: 0\n",
			"   Triggers: ● hello@7-127.0.0.1:31337-127.0.0.1:50312  pid 4711  uid 61184  up 1.",
			"\n\n● echo — builtin\n",
		} {
			if !strings.Contains(out, line) {
				t.Errorf("status %v lacks %q:\n%s", args, line, out)
			}
		}
	}
}

func TestStatusServiceFilter(t *testing.T) {
	sock := startControl(t, &ctlBackend{st: ctlStatus()})
	// Flags after the names work too, as they do for systemctl.
	code, out, errOut := run(status, "echo", "-control", sock)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if strings.Contains(out, "hello") || !strings.HasPrefix(out, "● echo — builtin\n") {
		t.Errorf("status echo:\n%s", out)
	}

	code, out, errOut = run(status, "-control", sock, "echo", "nope")
	if code != 1 || out != "" || errOut != "acceptd: unknown service \"nope\"\n" {
		t.Errorf("status nope: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestStatusJSON(t *testing.T) {
	want := ctlStatus()
	sock := startControl(t, &ctlBackend{st: want})
	code, out, errOut := run(status, "-json", "-control", sock, "hello")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("-json output is not one line:\n%s", out)
	}
	var got server.Status
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("-json output is not a Status: %v\n%s", err, out)
	}
	w := want.Services[0]
	if len(got.Services) != 1 || !got.Services[0].Instances[0].Started.Equal(w.Instances[0].Started) {
		t.Fatalf("got %+v", got)
	}
	got.Services[0].Instances[0].Started = w.Instances[0].Started
	if !reflect.DeepEqual(got.Services[0], w) {
		t.Errorf("got %+v\nwant %+v", got.Services[0], w)
	}
	for _, key := range []string{`"services":[`, `"name":"hello"`, `"mode":"exec"`, `"listen":["127.0.0.1:31337"]`,
		`"accepted":8`, `"connected":1`, `"refused":0`, `"bytes_in":0`, `"bytes_out":0`, `"instances":[{`,
		`"pid":4711`, `"uid":61184`, `"gid":61184`, `"remote":"127.0.0.1:50312"`, `"local":"127.0.0.1:31337"`, `"started":"`} {
		if !strings.Contains(out, key) {
			t.Errorf("-json output lacks %s", key)
		}
	}
}

func TestStatusNoDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "control.sock")
	code, out, errOut := run(status, "-control", sock)
	want := "acceptd: cannot reach the control socket " + sock + ": no such file or directory\n"
	if code != 1 || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
	}
}

func TestStatusUsage(t *testing.T) {
	for _, args := range [][]string{{"-bogus"}, {"-control"}, {"-json=maybe"}} {
		if code, _, errOut := run(status, args...); code != 2 || errOut == "" {
			t.Errorf("status %v: exit %d, stderr %q; want 2 and a message", args, code, errOut)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		names []string
		json  bool
	}{
		{nil, nil, false},
		{[]string{"a", "b"}, []string{"a", "b"}, false},
		{[]string{"a", "-json", "b"}, []string{"a", "b"}, true},
		{[]string{"--json", "a"}, []string{"a"}, true},
		{[]string{"a", "--", "-json"}, []string{"a", "-json"}, false},
	} {
		fs := newFlagSet("status", &bytes.Buffer{})
		j := fs.Bool("json", false, "")
		names, err := parseInterspersed(fs, tc.args)
		if err != nil || !reflect.DeepEqual(names, tc.names) || *j != tc.json {
			t.Errorf("parseInterspersed(%q) = %q, json %v, %v; want %q, json %v", tc.args, names, *j, err, tc.names, tc.json)
		}
	}
}

// TestStatusColorOnTerminal gives runStatus a pseudo-terminal as stdout:
// the dots are coloured there, and not with NO_COLOR.
func TestStatusColorOnTerminal(t *testing.T) {
	sock := startControl(t, &ctlBackend{st: ctlStatus()})
	for _, noColor := range []string{"", "1"} {
		t.Setenv("NO_COLOR", noColor)
		t.Setenv("TERM", "xterm")
		ptm, pts := openPTY(t)
		var stderr bytes.Buffer
		code := runStatus([]string{"-control", sock}, pts, &stderr)
		pts.Close()
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		out := readAll(t, ptm)
		ptm.Close()
		if colored := strings.Contains(out, "\x1b[0;1;32m●\x1b[0m hello"); colored != (noColor == "") {
			t.Errorf("NO_COLOR=%q: coloured %v:\n%q", noColor, colored, out)
		}
	}
}

// openPTY opens a pseudo-terminal pair (what creack/pty does, without the
// dependency).
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	ptm = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		ptm.Close()
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		ptm.Close()
		t.Fatal(err)
	}
	pts, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		ptm.Close()
		t.Fatal(err)
	}
	return ptm, pts
}

// readAll reads what the terminal holds; after the slave side is closed
// the master reads EIO at the end.
func readAll(t *testing.T, ptm *os.File) string {
	t.Helper()
	var buf bytes.Buffer
	b := make([]byte, 4096)
	for {
		n, err := ptm.Read(b)
		buf.Write(b[:n])
		if err != nil {
			return buf.String()
		}
	}
}
