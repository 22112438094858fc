package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acceptd/acceptd/internal/testutil"
)

// startTimeout bounds how long acceptd may take to come up; it is
// generous because the race-instrumented binary is slow on 2 shared cores.
const startTimeout = 30 * time.Second

// daemon is one running `acceptd run`.
type daemon struct {
	t       *testing.T
	dir     string // short directory for sockets and the config
	config  string // path of the configuration file
	control string // control socket
	ports   []int  // the ports {{PORT}}, {{PORT1}}... stand for
	cmd     *exec.Cmd
	out     *syncBuffer
	exited  chan struct{}
	exitErr error
	// pgids are the process groups of instances seen while it ran; none
	// may outlive the daemon.
	pgids map[int]bool
}

// syncBuffer collects acceptd's stderr while tests read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// prog returns the command and environment lines of an exec block that
// runs this test binary in mode (see runProg).
func prog(mode string) string {
	env := ""
	if mode == "fds" {
		// Go's runtime keeps cgroup files open to follow CPU limits;
		// those are the program's own fds, not acceptd's.
		env = `, GODEBUG = "containermaxprocs=0,updatemaxprocs=0"`
	}
	return fmt.Sprintf("command = [%q]\n    environment = { ACCEPTD_TEST_PROG = %q%s }\n", bins.prog, mode, env)
}

// daemonOpts tunes startDaemon.
type daemonOpts struct {
	// ports is how many free TCP ports to pick for {{PORT}}, {{PORT1}}...
	ports int
	// raw: the body is the whole file; no log or control block is added.
	raw bool
	// dir is the working directory of acceptd; "" is the test's.
	dir string
}

// startDaemon writes body as a configuration (after a log block at debug
// level in JSON and a control socket in the daemon's directory), runs
// `acceptd run -config` on it and waits until `acceptd status` answers,
// which is after every listener is bound. In body, {{DIR}} stands for a
// short directory for sockets, {{PROG}} for the test program, and
// {{PORT}}, {{PORT1}}, ... for free TCP ports.
//
// The ports are picked outside the ephemeral range and checked free, but
// another process may take one before acceptd binds it; startDaemon then
// picks new ones and tries again.
func startDaemon(t *testing.T, body string, opts daemonOpts) *daemon {
	t.Helper()
	for attempt := 0; ; attempt++ {
		d, err := tryStartDaemon(t, body, opts)
		if err == nil {
			return d
		}
		if attempt < 3 && errors.Is(err, errPortTaken) {
			t.Logf("retrying with other ports: %v", err)
			continue
		}
		t.Fatal(err)
	}
}

var errPortTaken = errors.New("a picked port was taken")

func tryStartDaemon(t *testing.T, body string, opts daemonOpts) (*daemon, error) {
	t.Helper()
	d := &daemon{t: t, dir: testutil.ShortDir(t), out: &syncBuffer{}, exited: make(chan struct{}), pgids: map[int]bool{}}
	d.control = filepath.Join(d.dir, "control.sock")
	d.config = filepath.Join(d.dir, "acceptd.hcl")
	n := max(opts.ports, 1)
	for i := 0; i < n; i++ {
		d.ports = append(d.ports, freePort(t))
	}
	src := d.expand(body)
	if !opts.raw {
		src = fmt.Sprintf("log {\n  level = \"debug\"\n  format = \"json\"\n}\n\ncontrol {\n  socket = %q\n}\n\n%s", d.control, src)
	}
	if err := os.WriteFile(d.config, []byte(src), 0o644); err != nil {
		return nil, err
	}
	d.cmd = exec.Command(acceptdBin(), "run", "-config", d.config)
	d.cmd.Dir = opts.dir
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	// A group of its own: a child caught between fork and its own setpgid
	// is in acceptd's group, and a test that kills leftover groups must
	// never name the group of the test run itself.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return nil, err
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
		return nil, fmt.Errorf("acceptd did not answer on %s within %s; output:\n%s", d.control, startTimeout, d.out)
	}
	select {
	case <-d.exited:
		if strings.Contains(d.out.String(), "address already in use") {
			return nil, fmt.Errorf("%w: %s", errPortTaken, d.out)
		}
		return nil, fmt.Errorf("acceptd exited at start (%v); config:\n%s\noutput:\n%s", d.exitErr, src, d.out)
	default:
	}
	return d, nil
}

func (d *daemon) expand(s string) string {
	pairs := []string{"{{DIR}}", d.dir, "{{PROG}}", bins.prog, "{{PORT}}", strconv.Itoa(d.ports[0])}
	for i, p := range d.ports {
		pairs = append(pairs, fmt.Sprintf("{{PORT%d}}", i), strconv.Itoa(p))
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// freePort returns a TCP port that is free on 127.0.0.1, ::1 and the
// wildcard addresses right now. It is taken from below the ephemeral range
// (32768-60999), so that no outgoing connection of this host takes it.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		p := 20000 + rand.IntN(12000)
		free := true
		for _, a := range []string{"0.0.0.0", "[::]"} {
			ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", a, p))
			if err != nil {
				if a == "[::]" && !haveIPv6() {
					continue
				}
				free = false
				break
			}
			ln.Close()
		}
		if free {
			return p
		}
	}
	t.Fatal("no free TCP port found")
	return 0
}

// haveIPv6 reports whether ::1 can be bound (IPv6 may be off in a
// container).
func haveIPv6() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func requireIPv6(t *testing.T) {
	t.Helper()
	if !haveIPv6() {
		t.Skip("IPv6 is not available on loopback")
	}
}

// addr is 127.0.0.1 with the i-th picked port.
func (d *daemon) addr(i int) string {
	return fmt.Sprintf("127.0.0.1:%d", d.ports[i])
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// kill ends a daemon that a failed test left running, with its
// instances, so that nothing outlives the test.
func (d *daemon) kill() {
	select {
	case <-d.exited:
		return
	default:
	}
	for _, c := range testutil.Children(d.pid()) {
		testutil.KillGroup(c.Pgid)
	}
	d.cmd.Process.Kill()
	<-d.exited
	if d.t.Failed() {
		d.t.Logf("acceptd output:\n%s", d.out)
	}
}

// noteChildren remembers the process groups of acceptd's current
// children, so that stop can check none of them outlives acceptd.
func (d *daemon) noteChildren() {
	for _, c := range testutil.Children(d.pid()) {
		if c.Pgid != syscall.Getpgrp() {
			d.pgids[c.Pgid] = true
		}
	}
}

// stop sends SIGTERM and checks that acceptd exits 0, removes its socket
// files (the control socket and any of files) and leaves no process of any
// instance behind.
func (d *daemon) stop(files ...string) {
	d.t.Helper()
	defer func() {
		if d.t.Failed() {
			d.t.Logf("acceptd output:\n%s", d.out)
		}
	}()
	d.noteChildren()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(60 * time.Second):
		d.t.Fatalf("acceptd did not stop within 60s after SIGTERM; output:\n%s", d.out)
	}
	if d.exitErr != nil {
		d.t.Fatalf("acceptd exited with %v after SIGTERM, want status 0; output:\n%s", d.exitErr, d.out)
	}
	for _, f := range append([]string{d.control}, files...) {
		if _, err := os.Lstat(f); !errors.Is(err, os.ErrNotExist) {
			d.t.Errorf("%s still exists after acceptd stopped (%v)", f, err)
		}
	}
	d.checkNoLeftovers()
}

// checkNoLeftovers fails the test if any process of a noted instance
// group is still alive.
func (d *daemon) checkNoLeftovers() {
	d.t.Helper()
	var left []testutil.Stat
	testutil.Poll(5*time.Second, func() bool {
		left = left[:0]
		for _, p := range testutil.Processes() {
			if d.pgids[p.Pgid] && p.State != 'Z' {
				left = append(left, p)
			}
		}
		return len(left) == 0
	})
	if len(left) > 0 {
		d.t.Errorf("processes of acceptd's instances still running after it stopped: %+v", left)
		for _, p := range left {
			syscall.Kill(p.Pid, syscall.SIGKILL)
		}
	}
}

// status is the part of `acceptd status -json` the tests read (CONTRACT:
// Status).
type status struct {
	Services []serviceStatus `json:"services"`
}

type serviceStatus struct {
	Name           string            `json:"name"`
	Mode           string            `json:"mode"`
	Listen         []string          `json:"listen"`
	Accepted       uint64            `json:"accepted"`
	Connected      uint64            `json:"connected"`
	Refused        uint64            `json:"refused"`
	RefusedReasons map[string]uint64 `json:"refused_reasons"`
	Instances      []struct {
		Name   string `json:"name"`
		Pid    int    `json:"pid"`
		UID    int    `json:"uid"`
		GID    int    `json:"gid"`
		Remote string `json:"remote"`
		Local  string `json:"local"`
	} `json:"instances"`
}

func (d *daemon) statusErr() (*status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, acceptdBin(), "status", "-json", "-control", d.control)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("acceptd status: %w: %s", err, stderr.String())
	}
	var st status
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("acceptd status -json printed %q: %w", out, err)
	}
	return &st, nil
}

// service returns the status of one service.
func (d *daemon) service(name string) serviceStatus {
	d.t.Helper()
	st, err := d.statusErr()
	if err != nil {
		d.t.Fatal(err)
	}
	for _, s := range st.Services {
		if s.Name == name {
			for _, in := range s.Instances {
				if in.Pid > 0 {
					d.pgids[in.Pid] = true
				}
			}
			return s
		}
	}
	d.t.Fatalf("no service %q in status %+v", name, st)
	return serviceStatus{}
}

// logEntry is one JSON line of acceptd's log.
type logEntry map[string]any

func (e logEntry) str(k string) string {
	v, _ := e[k].(string)
	return v
}

// logs returns the JSON log lines whose msg is msg ("" for all).
func (d *daemon) logs(msg string) []logEntry {
	var out []logEntry
	sc := bufio.NewScanner(strings.NewReader(d.out.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e logEntry
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		if msg == "" || e.str("msg") == msg {
			out = append(out, e)
		}
	}
	return out
}

// waitLogs waits until at least n log lines with msg have been written.
func (d *daemon) waitLogs(msg string, n int) []logEntry {
	d.t.Helper()
	var got []logEntry
	if !testutil.Poll(30*time.Second, func() bool {
		got = d.logs(msg)
		return len(got) >= n
	}) {
		d.t.Fatalf("want %d log lines %q, have %d; output:\n%s", n, msg, len(got), d.out)
	}
	return got
}

// dial connects to addr ("/path", "@name" or "host:port").
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	network := "tcp"
	if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "@") {
		network = "unix"
	}
	c, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAll reads from c until EOF, failing the test after 20s.
func readAll(t testing.TB, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b bytes.Buffer
	_, err := b.ReadFrom(c)
	if err != nil {
		t.Fatalf("read from %s: %v (got %q)", c.RemoteAddr(), err, b.String())
	}
	return b.String()
}

// readLine reads one line from c, failing the test after 20s.
func readLine(t testing.TB, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read line from %s: %v (got %q)", c.RemoteAddr(), err, line)
	}
	return strings.TrimSuffix(line, "\n")
}

// request connects to addr, sends in (closing the write side after it),
// and returns everything the server sent until it closed.
func request(t testing.TB, addr, in string) string {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	if in != "" {
		if _, err := c.Write([]byte(in)); err != nil {
			t.Fatalf("write to %s: %v", addr, err)
		}
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	return readAll(t, c)
}
