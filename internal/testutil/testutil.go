package testutil

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ShortDir returns a new empty directory under os.TempDir whose path is
// short enough for UNIX socket names (sun_path holds 108 bytes, and
// t.TempDir's paths carry the test's name). It is removed when the test
// ends. The directory is world-searchable (0755) so that children running
// as another user can reach sockets and programs in it.
func ShortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "acd")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// SocketFiles makes, in dir, the three things that can already be at a
// UNIX socket's path: a regular file holding "keep", a socket that a
// listener (closed with the test) still serves, and a stale socket nobody
// serves any more.
func SocketFiles(t testing.TB, dir string) (regular, live, stale string) {
	t.Helper()
	regular = filepath.Join(dir, "file")
	if err := os.WriteFile(regular, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	live = filepath.Join(dir, "live.sock")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	stale = filepath.Join(dir, "stale.sock")
	sl, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	sl.(*net.UnixListener).SetUnlinkOnClose(false)
	sl.Close()
	return regular, live, stale
}

// WaitFor calls cond every few milliseconds until it returns true, and
// fails the test with what's description when it has not after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// Poll calls cond until it returns true or timeout has passed, and
// reports whether it returned true. The interval grows from 1ms to 50ms,
// so that quick conditions are seen quickly and slow ones cost little.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	d := time.Millisecond
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(d)
		d = min(2*d, 50*time.Millisecond)
	}
}

// RequirePeersEnv is the environment variable that turns a missing peer
// program from a skip into a failure; CI sets it after installing them.
const RequirePeersEnv = "ACCEPTD_REQUIRE_PEERS"

// RequirePeer returns the absolute path of program, found in PATH (and
// in /usr/sbin and /sbin, where xinetd and friends live but which a
// non-root PATH may lack). When it is missing the test is skipped with a
// message that says what to install, or fails when ACCEPTD_REQUIRE_PEERS=1.
func RequirePeer(t testing.TB, program string) string {
	t.Helper()
	if p, err := exec.LookPath(program); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, program)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found in PATH; install it (Debian: see .ci/run) to run this test", program)
	if os.Getenv(RequirePeersEnv) == "1" {
		t.Fatalf("%s (%s=1 makes this a failure)", msg, RequirePeersEnv)
	}
	t.Skip(msg)
	return ""
}

// RequireRoot skips the test unless it runs as root, or fails when
// ACCEPTD_REQUIRE_PEERS=1 (CI runs as root, so such tests must run there).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(RequirePeersEnv) == "1" {
		t.Fatalf("this test needs root (%s=1 makes this a failure)", RequirePeersEnv)
	}
	t.Skip("this test needs root")
}

// FDs returns the open file descriptors of process pid, as numbers mapped
// to their /proc/PID/fd link targets.
func FDs(pid int) (map[int]string, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fds := make(map[int]string, len(ents))
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			// Closed between the listing and now.
			continue
		}
		fds[n] = target
	}
	return fds, nil
}

// Threads returns the number of threads of process pid.
func Threads(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("no Threads line in /proc/%d/status", pid)
}

// Stat is the part of /proc/PID/stat the tests look at.
type Stat struct {
	Pid, PPid, Pgid int
	State           byte // R, S, D, Z, T ...
	// CPUTicks is utime+stime in clock ticks (USER_HZ, 100 on Linux).
	CPUTicks uint64
}

// ReadStat parses /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	return parseStat(string(b))
}

func parseStat(s string) (Stat, error) {
	// The command name is in parentheses and may itself hold spaces and
	// parentheses: the fields start after the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("bad stat line %q", s)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:strings.IndexByte(s, '(')]))
	if err != nil {
		return Stat{}, fmt.Errorf("bad stat line %q: %w", s, err)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return Stat{}, fmt.Errorf("short stat line %q", s)
	}
	st := Stat{Pid: pid, State: f[0][0]}
	st.PPid, _ = strconv.Atoi(f[1])
	st.Pgid, _ = strconv.Atoi(f[2])
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	stt, _ := strconv.ParseUint(f[12], 10, 64)
	st.CPUTicks = ut + stt
	return st, nil
}

// Processes returns the stat of every process on the host. Processes that
// exit while the list is read are left out.
func Processes() []Stat {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []Stat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := ReadStat(pid); err == nil {
			out = append(out, st)
		}
	}
	return out
}

// Children returns the processes whose parent is pid.
func Children(pid int) []Stat {
	var out []Stat
	for _, st := range Processes() {
		if st.PPid == pid {
			out = append(out, st)
		}
	}
	return out
}

// KillGroup sends SIGKILL to process group pgid, unless that is the
// group of the calling test (a child read from /proc between its fork and
// its setpgid still shows its parent's group) or not a group at all:
// kill(-0) and kill(-1) would take the test run with them.
func KillGroup(pgid int) {
	if pgid <= 1 || pgid == syscall.Getpgrp() {
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// InGroup returns the processes whose process group is pgid.
func InGroup(pgid int) []Stat {
	var out []Stat
	for _, st := range Processes() {
		if st.Pgid == pgid {
			out = append(out, st)
		}
	}
	return out
}

// Alive reports whether process pid exists and is not a zombie.
func Alive(pid int) bool {
	st, err := ReadStat(pid)
	return err == nil && st.State != 'Z' && st.State != 'X'
}

// FullBacklog returns a TCP address on loopback whose accept queue is full
// and never drained: a connect to it never completes the handshake. It
// skips the test when the kernel completes connects anyway (syncookies).
func FullBacklog(t testing.TB) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	// Fill the queue until a connect hangs.
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return addr
			}
			t.Fatalf("filling the backlog of %s: %v", addr, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill a listen backlog on loopback (syncookies?)")
	return ""
}

// Get fetches url with c (http.DefaultClient when nil) and returns the
// response, its body read and closed; a failed request or read fails t.
func Get(t testing.TB, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
