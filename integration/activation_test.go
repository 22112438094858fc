package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acceptd/acceptd/internal/testutil"
)

// actOpts says how startActivated runs acceptd.
type actOpts struct {
	// files become descriptors 3, 4, ... of acceptd.
	files []*os.File
	// env is added to the test's environment (from which every
	// LISTEN_*, NOTIFY_SOCKET and WATCHDOG_* variable is removed).
	env []string
	// listenPID sets LISTEN_PID to acceptd's own pid, the way systemd
	// does, through `sh -c 'export LISTEN_PID=$$; exec ...'`.
	listenPID bool
	ports     int
}

// managerEnv lists the variables a service manager sets.
var managerEnv = []string{"LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=", "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID="}

func cleanEnv() []string {
	var env []string
outer:
	for _, kv := range os.Environ() {
		for _, p := range managerEnv {
			if strings.HasPrefix(kv, p) {
				continue outer
			}
		}
		env = append(env, kv)
	}
	return env
}

// activatedCmd returns the command that runs `acceptd run -config
// config` as o says.
func activatedCmd(config string, o actOpts) *exec.Cmd {
	args := []string{"run", "-config", config}
	var cmd *exec.Cmd
	if o.listenPID {
		cmd = exec.Command("/bin/sh", append([]string{"-c", `export LISTEN_PID=$$; exec "$0" "$@"`, acceptdBin()}, args...)...)
	} else {
		cmd = exec.Command(acceptdBin(), args...)
	}
	cmd.ExtraFiles = o.files
	cmd.Env = append(cleanEnv(), o.env...)
	return cmd
}

// writeConfig prepares a daemon like startDaemon does (log block, control
// socket, {{...}} expanded) without starting it.
func writeConfig(t *testing.T, body string, ports int) *daemon {
	t.Helper()
	d := &daemon{t: t, dir: testutil.ShortDir(t), out: &syncBuffer{}, exited: make(chan struct{}), pgids: map[int]bool{}}
	d.control = filepath.Join(d.dir, "control.sock")
	d.config = filepath.Join(d.dir, "acceptd.hcl")
	for i := 0; i < max(ports, 1); i++ {
		d.ports = append(d.ports, freePort(t))
	}
	src := fmt.Sprintf("log {\n  level = \"debug\"\n  format = \"json\"\n}\n\ncontrol {\n  socket = %q\n}\n\n%s", d.control, d.expand(body))
	if err := os.WriteFile(d.config, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// startActivated runs acceptd with inherited sockets and waits until its
// control socket answers.
func startActivated(t *testing.T, body string, o actOpts) *daemon {
	t.Helper()
	d := writeConfig(t, body, o.ports)
	d.cmd = activatedCmd(d.config, o)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.exitErr = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(d.kill)
	if !testutil.Poll(startTimeout, func() bool {
		select {
		case <-d.exited:
			return true
		default:
		}
		_, err := d.statusErr()
		return err == nil
	}) {
		t.Fatalf("acceptd did not answer on %s; output:\n%s", d.control, d.out)
	}
	select {
	case <-d.exited:
		t.Fatalf("acceptd exited at start (%v); output:\n%s", d.exitErr, d.out)
	default:
	}
	return d
}

// listenerFile returns a new listening socket on network/address as a
// file to pass, its address, and its socket inode ("socket:[N]").
func listenerFile(t *testing.T, network, address string) (*os.File, string, string) {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f, err := ln.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	inode, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return f, ln.Addr().String(), inode
}

// TestActivationRun passes five listening sockets to `acceptd run` as
// systemd does: one claimed by systemd:NAME, one by fd:N, a TCP and a
// UNIX one by a plain listen address equal to theirs, and one nobody
// claims, which acceptd must close. The exec child sees no LISTEN_*.
func TestActivationRun(t *testing.T) {
	sockDir := testutil.ShortDir(t)
	web, webAddr, webInode := listenerFile(t, "tcp", "127.0.0.1:0")
	other, otherAddr, _ := listenerFile(t, "tcp", "127.0.0.1:0")
	plain, plainAddr, _ := listenerFile(t, "tcp", "127.0.0.1:0")
	spare, _, spareInode := listenerFile(t, "tcp", "127.0.0.1:0")
	usockPath := filepath.Join(sockDir, "u.sock")
	usock, _, _ := listenerFile(t, "unix", usockPath)

	d := startActivated(t, fmt.Sprintf(`
service "web" {
  listen = ["systemd:web"]
  exec {
    %s  }
}
service "byfd" {
  listen  = ["fd:4"]
  builtin = "echo"
}
service "plain" {
  listen  = [%q]
  builtin = "echo"
}
service "usock" {
  listen  = [%q]
  builtin = "echo"
}
`, prog("env"), plainAddr, usockPath), actOpts{
		files:     []*os.File{web, other, plain, spare, usock},
		env:       []string{"LISTEN_FDS=5", "LISTEN_FDNAMES=web:other:plain:spare:usock"},
		listenPID: true,
	})

	env := request(t, webAddr, "")
	for _, line := range strings.Split(env, "\n") {
		for _, p := range managerEnv {
			if strings.HasPrefix(line, p) {
				t.Errorf("the exec child got %s", line)
			}
		}
	}
	if !strings.Contains(env, "ACCEPTD_SERVICE=web") {
		t.Errorf("systemd:web was not served by service web; child env:\n%s", env)
	}
	for _, a := range []string{otherAddr, plainAddr, usockPath} {
		if got := request(t, a, "ping\n"); got != "ping\n" {
			t.Errorf("echo on the inherited socket %s answered %q", a, got)
		}
	}

	fds, err := testutil.FDs(d.pid())
	if err != nil {
		t.Fatal(err)
	}
	var haveWeb bool
	for fd, target := range fds {
		if target == spareInode {
			t.Errorf("acceptd still holds the unclaimed inherited socket as fd %d", fd)
		}
		haveWeb = haveWeb || target == webInode
	}
	if !haveWeb {
		t.Errorf("acceptd does not hold the systemd:web socket %s: %v", webInode, fds)
	}
	// The log reaches d.out through a pipe: wait for the line.
	if !testutil.Poll(10*time.Second, func() bool {
		for _, e := range d.logs("") {
			if strings.Contains(e.str("msg"), "inherited socket") && e["fd"] == float64(6) {
				return true
			}
		}
		return false
	}) {
		t.Errorf("no log line about closing the unclaimed fd 6; output:\n%s", d.out)
	}
	for _, s := range []string{"web", "byfd", "plain", "usock"} {
		if st := d.service(s); len(st.Listen) != 1 {
			t.Errorf("service %s listens on %v", s, st.Listen)
		}
	}
	d.stop()
	// The socket file belongs to whoever passed it.
	if _, err := os.Lstat(usockPath); err != nil {
		t.Errorf("acceptd removed the inherited socket file %s: %v", usockPath, err)
	}
}

// TestActivationMalformed feeds `acceptd run` broken LISTEN_* variables.
// Each gives a clear error (exit 1) or the documented fallback (it runs,
// with a warning); none crashes.
func TestActivationMalformed(t *testing.T) {
	regular, err := os.CreateTemp(t.TempDir(), "notsock")
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()
	sock := func() *os.File {
		f, _, _ := listenerFile(t, "tcp", "127.0.0.1:0")
		return f
	}
	const plainService = `
service "echo" {
  listen  = ["127.0.0.1:{{PORT}}"]
  builtin = "echo"
}
`
	const fd3Service = `
service "echo" {
  listen  = ["fd:3"]
  builtin = "echo"
}
`
	const namedService = `
service "echo" {
  listen  = ["systemd:a"]
  builtin = "echo"
}
`
	cases := []struct {
		name      string
		body      string
		env       []string
		listenPID bool
		files     []*os.File
		// errText is what the error must say; "" when acceptd must run.
		errText string
		// warn is a piece of the warning logged when it runs.
		warn string
	}{
		{name: "pid of another process", body: fd3Service, env: []string{"LISTEN_PID=1", "LISTEN_FDS=1"}, files: []*os.File{sock()}, warn: "LISTEN_PID=1"},
		{name: "fds without pid", body: plainService, env: []string{"LISTEN_FDS=1"}, files: []*os.File{sock()}, warn: "without LISTEN_PID"},
		{name: "pid not a number", body: plainService, env: []string{"LISTEN_PID=abc", "LISTEN_FDS=1"}, files: []*os.File{sock()}, errText: "LISTEN_PID"},
		{name: "pid negative", body: plainService, env: []string{"LISTEN_PID=-5", "LISTEN_FDS=1"}, files: []*os.File{sock()}, errText: "LISTEN_PID"},
		{name: "zero fds", body: plainService, env: []string{"LISTEN_FDS=0"}, listenPID: true},
		{name: "zero fds with names", body: plainService, env: []string{"LISTEN_FDS=0", "LISTEN_FDNAMES=a"}, listenPID: true, warn: "names ignored"},
		{name: "negative fds", body: plainService, env: []string{"LISTEN_FDS=-1"}, listenPID: true, errText: "LISTEN_FDS"},
		{name: "fds not a number", body: plainService, env: []string{"LISTEN_FDS=two"}, listenPID: true, errText: "LISTEN_FDS"},
		{name: "huge fds", body: plainService, env: []string{"LISTEN_FDS=99999999"}, listenPID: true, errText: "LISTEN_FDS"},
		{name: "overflowing fds", body: plainService, env: []string{"LISTEN_FDS=99999999999999999999"}, listenPID: true, errText: "LISTEN_FDS"},
		{name: "more fds than passed", body: plainService, env: []string{"LISTEN_FDS=3"}, listenPID: true, files: []*os.File{sock()}, errText: "LISTEN_FDS=3"},
		{name: "not a socket", body: plainService, env: []string{"LISTEN_FDS=1"}, listenPID: true, files: []*os.File{regular}, errText: "socket"},
		{name: "names count differs", body: fd3Service, env: []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=a:b"}, listenPID: true, files: []*os.File{sock()}, warn: "names ignored"},
		{name: "names count differs, name used", body: namedService, env: []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=a:b"}, listenPID: true, files: []*os.File{sock()}, errText: `"a"`},
		{name: "name matches", body: namedService, env: []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=a"}, listenPID: true, files: []*os.File{sock()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := actOpts{files: tc.files, env: tc.env, listenPID: tc.listenPID}
			if tc.errText == "" {
				d := startActivated(t, tc.body, o)
				// The log reaches d.out through a pipe: wait for it.
				if tc.warn != "" && !testutil.Poll(10*time.Second, func() bool { return strings.Contains(d.out.String(), tc.warn) }) {
					t.Errorf("no warning containing %q; output:\n%s", tc.warn, d.out)
				}
				if l := d.service("echo").Listen; len(l) != 1 {
					t.Errorf("listening on %v", l)
				}
				d.stop()
				checkNoCrash(t, d.out.String())
				return
			}
			d := writeConfig(t, tc.body, 1)
			p := startProc(t, activatedCmd(d.config, o))
			code := p.wait(t, startTimeout)
			out := p.out.String()
			checkNoCrash(t, out)
			if code != 1 {
				t.Errorf("exit status %d, want 1; output:\n%s", code, out)
			}
			if !strings.Contains(out, tc.errText) {
				t.Errorf("error does not mention %q; output:\n%s", tc.errText, out)
			}
			if _, err := os.Lstat(d.control); err == nil {
				t.Errorf("control socket bound although start-up failed")
			}
		})
	}
}

func checkNoCrash(t *testing.T, out string) {
	t.Helper()
	for _, s := range []string{"panic:", "goroutine ", "SIGSEGV", "fatal error:"} {
		if strings.Contains(out, s) {
			t.Errorf("acceptd crashed (%q); output:\n%s", s, out)
		}
	}
}

// notifyListener is a service manager's notification socket.
func notifyListener(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(testutil.ShortDir(t), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			select {
			case ch <- string(buf[:n]):
			default:
			}
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return path, ch
}

// nextNotify returns the next notification that contains want, and every
// one received before it.
func nextNotify(t *testing.T, ch <-chan string, want string) (string, []string) {
	t.Helper()
	var before []string
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-ch:
			if strings.Contains(m, want) {
				return m, before
			}
			before = append(before, m)
		case <-timeout:
			t.Fatalf("no notification with %q within 20s; got %q", want, before)
			return "", nil
		}
	}
}

// TestNotify: with NOTIFY_SOCKET, READY=1 (and STATUS=) once everything
// is bound, RELOADING=1 then READY=1 around a SIGHUP reload, STOPPING=1 on
// SIGTERM; WATCHDOG_USEC=200000 gets WATCHDOG=1 pings.
func TestNotify(t *testing.T) {
	path, ch := notifyListener(t)
	d := writeConfig(t, `
service "echo" {
  listen  = ["127.0.0.1:{{PORT}}"]
  builtin = "echo"
}
`, 1)
	d.cmd = activatedCmd(d.config, actOpts{env: []string{"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=200000"}})
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.exitErr = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(d.kill)

	ready, before := nextNotify(t, ch, "READY=1")
	// Everything is bound when READY=1 is sent: the listener and the
	// control socket answer at once.
	if got := request(t, d.addr(0), "bound\n"); got != "bound\n" {
		t.Errorf("right after READY=1 the service answered %q", got)
	}
	if _, err := d.statusErr(); err != nil {
		t.Errorf("control socket not answering right after READY=1: %v", err)
	}
	if !strings.Contains(ready, "STATUS=") {
		t.Errorf("READY=1 came without a STATUS= line: %q", ready)
	}
	for _, m := range before {
		if !strings.Contains(m, "STATUS=") && !strings.Contains(m, "WATCHDOG=1") {
			t.Errorf("unexpected notification before READY=1: %q", m)
		}
	}

	// WATCHDOG_USEC=200000: pings every 100ms or so.
	pings := 0
	deadline := time.After(10 * time.Second)
	for pings < 3 {
		select {
		case m := <-ch:
			if strings.Contains(m, "WATCHDOG=1") {
				pings++
			}
		case <-deadline:
			t.Fatalf("%d WATCHDOG=1 pings within 10s, want 3", pings)
		}
	}

	d.cmd.Process.Signal(syscall.SIGHUP)
	reloading, _ := nextNotify(t, ch, "RELOADING=1")
	if !strings.Contains(reloading, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC= (Type=notify-reload needs it): %q", reloading)
	}
	nextNotify(t, ch, "READY=1")
	if got := request(t, d.addr(0), "after reload\n"); got != "after reload\n" {
		t.Errorf("after the reload the service answered %q", got)
	}

	d.cmd.Process.Signal(syscall.SIGTERM)
	nextNotify(t, ch, "STOPPING=1")
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("acceptd did not exit after SIGTERM")
	}
	if d.exitErr != nil {
		t.Errorf("acceptd exited with %v, want 0", d.exitErr)
	}
	if w := strings.Count(d.out.String(), "watchdog ping failed"); w > 0 {
		t.Errorf("%d failed watchdog pings logged", w)
	}
}

// TestExitIdleTime: exit_idle_time in a configuration makes acceptd exit
// 0 once it has had no connection that long, not while one is open.
func TestExitIdleTime(t *testing.T) {
	// Not startDaemon: its `acceptd status` polls may take longer than
	// exit_idle_time with the race detector; the first connection is made
	// as soon as the listener answers instead.
	d := writeConfig(t, `
exit_idle_time = "2s"

service "echo" {
  listen  = ["127.0.0.1:{{PORT}}"]
  builtin = "echo"
}
`, 1)
	p := startProc(t, exec.Command(acceptdBin(), "run", "-config", d.config))
	c := dialEventually(t, p, d.addr(0))
	for i := 0; i < 3; i++ {
		fmt.Fprintf(c, "still here %d\n", i)
		if got := readLine(t, c); got != fmt.Sprintf("still here %d", i) {
			t.Fatalf("echo answered %q", got)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// Open but silent for longer than exit_idle_time: an open
	// connection is not idleness.
	time.Sleep(2500 * time.Millisecond)
	if !p.running() {
		t.Fatalf("acceptd exited while a connection was open; output:\n%s", p.out)
	}
	c.Close()
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("acceptd exited %d after idling, want 0; output:\n%s", code, p.out)
	}
	if !strings.Contains(p.out.String(), "exit_idle_time") {
		t.Errorf("no log line says why acceptd exited; output:\n%s", p.out)
	}
	if _, err := os.Lstat(d.control); err == nil {
		t.Errorf("control socket %s left behind", d.control)
	}
}

// TestActivationSharedName: systemd gives every socket of a socket unit
// the same name (the unit's, unless FileDescriptorName= says otherwise),
// so `systemd:NAME` must take all the sockets of that name, not the first
// only.
func TestActivationSharedName(t *testing.T) {
	a, aAddr, _ := listenerFile(t, "tcp", "127.0.0.1:0")
	b, bAddr, bInode := listenerFile(t, "tcp", "127.0.0.1:0")
	d := startActivated(t, `
service "echo" {
  listen  = ["systemd:acceptd.socket"]
  builtin = "echo"
}
`, actOpts{
		files:     []*os.File{a, b},
		env:       []string{"LISTEN_FDS=2", "LISTEN_FDNAMES=acceptd.socket:acceptd.socket"},
		listenPID: true,
	})
	if l := d.service("echo").Listen; len(l) != 2 {
		t.Errorf("systemd:acceptd.socket with two sockets of that name listens on %v, want both", l)
	}
	fds, _ := testutil.FDs(d.pid())
	held := false
	for _, target := range fds {
		held = held || target == bInode
	}
	if !held {
		t.Errorf("acceptd closed the second socket named acceptd.socket (%s)", bAddr)
	}
	addrs := []string{aAddr}
	if held {
		// Only then: a socket acceptd closed still queues connections
		// in the test's own copy, and the dial would just time out.
		addrs = append(addrs, bAddr)
	}
	for _, addr := range addrs {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Errorf("dial %s: %v", addr, err)
			continue
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "x\n")
		buf := make([]byte, 2)
		if _, err := c.Read(buf); err != nil || string(buf) != "x\n" {
			t.Errorf("echo on %s: %q, %v", addr, buf, err)
		}
		c.Close()
	}
	d.stop()
}

// unitExecStart returns the ExecStart= command of a unit file, split on
// blanks (the examples use no quoting).
func unitExecStart(t *testing.T, unit string) []string {
	t.Helper()
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			return strings.Fields(v)
		}
	}
	t.Fatalf("%s has no ExecStart=", unit)
	return nil
}

// TestSystemdExamples checks the unit files and configurations in
// examples/systemd: every configuration passes `acceptd check`, every
// acceptd unit is Type=notify and names an example configuration, the
// units pass `systemd-analyze verify`, and the ExecStart= lines of the
// relay examples work as written (with paths and ports swapped for the
// test's).
func TestSystemdExamples(t *testing.T) {
	root := filepath.Join(bins.root, "examples", "systemd")
	units, _ := filepath.Glob(filepath.Join(root, "*", "*.service"))
	sockets, _ := filepath.Glob(filepath.Join(root, "*", "*.socket"))
	configs, _ := filepath.Glob(filepath.Join(root, "*", "*.hcl"))
	if len(units) < 6 || len(sockets) < 3 || len(configs) < 3 {
		t.Fatalf("examples/systemd has %d services, %d sockets, %d configurations", len(units), len(sockets), len(configs))
	}

	tmp := t.TempDir()
	for _, cf := range configs {
		b, err := os.ReadFile(cf)
		if err != nil {
			t.Fatal(err)
		}
		// The programs of start blocks need not be installed here.
		src := strings.ReplaceAll(string(b), "/usr/sbin/nginx", "/bin/sh")
		p := filepath.Join(tmp, filepath.Base(cf))
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(acceptdBin(), "check", "-config", p).CombinedOutput(); err != nil {
			t.Errorf("acceptd check %s: %v\n%s", cf, err, out)
		}
	}

	for _, u := range units {
		args := unitExecStart(t, u)
		if args[0] != "/usr/local/bin/acceptd" {
			continue // the relayed daemon itself
		}
		b, _ := os.ReadFile(u)
		if !strings.Contains(string(b), "\nType=notify\n") {
			t.Errorf("%s: acceptd units should be Type=notify", u)
		}
		if args[1] == "run" {
			if !strings.Contains(string(b), "\nExecReload=/bin/kill -HUP $MAINPID\n") {
				t.Errorf("%s: no ExecReload=/bin/kill -HUP $MAINPID", u)
			}
			if len(args) != 4 || args[2] != "-config" {
				t.Errorf("%s: ExecStart=%v, want acceptd run -config FILE", u, args)
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(u), filepath.Base(args[3]))); err != nil {
				t.Errorf("%s runs %s, which has no example next to it: %v", u, args[3], err)
			}
		}
	}

	t.Run("systemd-analyze verify", func(t *testing.T) {
		analyze := testutil.RequirePeer(t, "systemd-analyze")
		dirs, _ := filepath.Glob(filepath.Join(root, "*"))
		for _, dir := range dirs {
			files, _ := filepath.Glob(filepath.Join(dir, "*.s*"))
			vdir := t.TempDir()
			var names []string
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				src := strings.NewReplacer("/usr/local/bin/acceptd", acceptdBin(), "/usr/local/bin/foobard", "/bin/sleep").Replace(string(b))
				os.WriteFile(filepath.Join(vdir, filepath.Base(f)), []byte(src), 0o644)
				names = append(names, filepath.Base(f))
			}
			// nginx.service is the user's own.
			os.WriteFile(filepath.Join(vdir, "nginx.service"), []byte("[Service]\nExecStart=/bin/sleep 1\n"), 0o644)
			cmd := exec.Command(analyze, append([]string{"verify"}, names...)...)
			cmd.Dir = vdir
			if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", dir, err, out)
			}
		}
	})

	// foobar-unix.service, as systemd would run it.
	t.Run("foobar-unix.service", func(t *testing.T) {
		be := startBackend(t, "tcp", "127.0.0.1:0", echoServe)
		rt := testutil.ShortDir(t)
		var args []string
		for _, a := range unitExecStart(t, filepath.Join(root, "simpletcpunixrelay", "foobar-unix.service"))[1:] {
			a = strings.ReplaceAll(a, "${RUNTIME_DIRECTORY}", rt)
			a = strings.ReplaceAll(a, "127.0.0.1:8000", be.addr)
			args = append(args, a)
		}
		p := startProc(t, exec.Command(acceptdBin(), args...))
		c := dialEventually(t, p, filepath.Join(rt, "socket"))
		exchange(t, c, []byte("through foobar-unix.service\n"))
		p.stop(t)
	})

	// proxy-to-nginx.service, with its socket from systemd-socket-activate.
	t.Run("proxy-to-nginx.service", func(t *testing.T) {
		ssa := testutil.RequirePeer(t, "systemd-socket-activate")
		be := startBackend(t, "unix", filepath.Join(testutil.ShortDir(t), "socket"), echoServe)
		args := unitExecStart(t, filepath.Join(root, "nginx", "proxy-to-nginx.service"))
		if len(args) != 3 || args[1] != "proxy" || args[2] != "/run/nginx/socket" {
			t.Fatalf("ExecStart=%v, want acceptd proxy /run/nginx/socket", args)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		p := startProc(t, exec.Command(ssa, "-l", addr, acceptdBin(), "proxy", be.addr))
		c := dialEventually(t, p, addr)
		exchange(t, c, []byte("GET / HTTP/1.0\r\n\r\n"))
		p.stop(t)
	})
}
