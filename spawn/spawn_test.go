package spawn_test

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/spawn"
)

// testExe is the test binary, which plays every child program.
func testExe(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// besideEnv, set, makes progSpec's Specs NoExecWait (see
// TestNoExecWaitSuite).
const besideEnv = "ACCEPTD_SPAWN_TEST_BESIDE"

// progSpec returns a Spec that runs the test program prog on the plain
// path (Umask -1).
func progSpec(t testing.TB, prog string, args ...string) *spawn.Spec {
	exe := testExe(t)
	return &spawn.Spec{
		Path:       exe,
		Args:       append([]string{"spawn-test-" + prog}, args...),
		Env:        []string{progEnv + "=" + prog},
		Umask:      -1,
		NoExecWait: os.Getenv(besideEnv) != "",
	}
}

// child is a started test program whose stdout is a pipe the test reads.
type child struct {
	p   *spawn.Process
	out *bufio.Reader
	r   *os.File
}

// start starts spec with stdin (-1: none, then /dev/null) and a fresh pipe
// as stdout and stderr, unless spec.Files is already set.
func start(t *testing.T, spec *spawn.Spec, stdin int) *child {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if stdin < 0 {
		null, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer null.Close()
		stdin = int(null.Fd())
	}
	if spec.Files == nil {
		wfd := int(w.Fd()) // Fd puts w in blocking mode, as a child expects
		spec.Files = []int{stdin, wfd, wfd}
	}
	p, err := spawn.Start(spec)
	w.Close() // the child has its own copy now
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		_, _ = p.Wait()
	})
	return &child{p: p, out: bufio.NewReader(r), r: r}
}

// all reads the child's whole output and waits for it.
func (c *child) all(t *testing.T) (string, spawn.Result) {
	t.Helper()
	b, err := io.ReadAll(c.out)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return string(b), res
}

func (c *child) line(t *testing.T) string {
	t.Helper()
	_ = c.r.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the child's output: %v", err)
	}
	return strings.TrimSuffix(l, "\n")
}

// socketpair returns a blocking, close-on-exec socket pair.
func socketpair(t *testing.T) (int, int) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Close(fds[0])
		syscall.Close(fds[1])
	})
	return fds[0], fds[1]
}

func TestFiles(t *testing.T) {
	a, _ := socketpair(t)
	tests := []struct {
		name   string
		helper bool
		extra  []int // Files after 0, 1, 2
		want   string
	}{
		{name: "std", want: "0 1 2"},
		{name: "extra", extra: []int{a}, want: "0 1 2 3"},
		{name: "hole", extra: []int{-1, a}, want: "0 1 2 4"},
		{name: "helper", helper: true, want: "0 1 2"},
		{name: "helper-extra", helper: true, extra: []int{a}, want: "0 1 2 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			spec := progSpec(t, "fds")
			wfd := int(w.Fd())
			spec.Files = append([]int{a, wfd, wfd}, tt.extra...)
			if tt.helper {
				spec.NoNewPrivs = true
			}
			p, err := spawn.Start(spec)
			w.Close()
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(r)
			res, err := p.Wait()
			if err != nil || !res.Success() {
				t.Fatalf("Wait() = %v, %v", res, err)
			}
			if got := strings.TrimSpace(string(out)); got != tt.want {
				t.Errorf("child fds = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestClosedStdio(t *testing.T) {
	// Files shorter than 3, or -1: those descriptors are closed in the
	// child, on both paths, even though the Go helper's runtime reopens
	// them on /dev/null. The test program is ls, not the test binary,
	// for the same reason.
	for _, helper := range []bool{false, true} {
		t.Run("helper="+strconv.FormatBool(helper), func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			spec := &spawn.Spec{
				Path:       "/bin/ls",
				Args:       []string{"ls", "-l", "/proc/self/fd"},
				Files:      []int{-1, int(w.Fd())},
				Umask:      -1,
				NoNewPrivs: helper,
			}
			p, err := spawn.Start(spec)
			w.Close()
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(r)
			if _, err := p.Wait(); err != nil {
				t.Fatal(err)
			}
			var fds []string
			for l := range strings.SplitSeq(string(out), "\n") {
				// "lrwx------ 1 root root 64 Nov 21 02:38 1 -> pipe:[11596]"
				f := strings.Fields(l)
				if len(f) >= 3 && f[len(f)-2] == "->" && !strings.HasPrefix(f[len(f)-1], "/proc/") {
					fds = append(fds, f[len(f)-3])
				}
			}
			if got := strings.Join(fds, " "); got != "1" {
				t.Errorf("child fds = %q; want %q\n%s", got, "1", out)
			}
		})
	}
}

func TestStdinBlocking(t *testing.T) {
	a, _ := socketpair(t)
	c := start(t, progSpec(t, "stdin-flags"), a)
	out, res := c.all(t)
	if strings.TrimSpace(out) != "blocking" || !res.Success() {
		t.Errorf("child stdin = %q, %v; want blocking", out, res)
	}
}

func TestEcho(t *testing.T) {
	a, b := socketpair(t)
	spec := progSpec(t, "echo")
	spec.Files = []int{a, a, -1}
	p, err := spawn.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(a) // the parent lets go of its copy at once
	if _, err := syscall.Write(b, []byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	_ = syscall.Shutdown(b, syscall.SHUT_WR)
	buf := make([]byte, 64)
	n, _ := syscall.Read(b, buf)
	if got := string(buf[:max(n, 0)]); got != "hello\n" {
		t.Errorf("echo = %q; want %q", got, "hello\n")
	}
	res, err := p.Wait()
	if err != nil || !res.Success() {
		t.Errorf("Wait() = %v, %v", res, err)
	}
}

func TestEnvExact(t *testing.T) {
	for _, helper := range []bool{false, true} {
		t.Run("helper="+strconv.FormatBool(helper), func(t *testing.T) {
			spec := progSpec(t, "env")
			spec.Env = append(spec.Env, "A=1", "B=two words", "EMPTY=")
			spec.NoNewPrivs = helper
			t.Setenv("ACCEPTD_SPAWN_LEAK", "must not appear")
			out, _ := start(t, spec, -1).all(t)
			got := strings.Split(strings.TrimSpace(out), "\n")
			want := slices.Clone(spec.Env)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("child env = %q; want %q", got, want)
			}
		})
	}
}

func TestProcessGroup(t *testing.T) {
	for _, setsid := range []bool{false, true} {
		t.Run("setsid="+strconv.FormatBool(setsid), func(t *testing.T) {
			spec := progSpec(t, "pgid")
			spec.Setsid = setsid
			c := start(t, spec, -1)
			out, _ := c.all(t)
			pid := c.p.Pid()
			sid := pid
			if !setsid {
				s, _, _ := syscall.RawSyscall(syscall.SYS_GETSID, 0, 0, 0) // the test's own session
				sid = int(s)
			}
			want := "pid=" + strconv.Itoa(pid) + " pgid=" + strconv.Itoa(pid) + " sid=" + strconv.Itoa(sid)
			if strings.TrimSpace(out) != want {
				t.Errorf("child says %q; want %q", strings.TrimSpace(out), want)
			}
		})
	}
}

func TestResult(t *testing.T) {
	tests := []struct {
		prog    string
		args    []string
		signal  syscall.Signal // sent by the test after "ready"
		want    string
		success bool
	}{
		{prog: "exit", args: []string{"0"}, want: "exit status 0", success: true},
		{prog: "exit", args: []string{"3"}, want: "exit status 3"},
		{prog: "kill-self", want: "signal SIGKILL"},
		{prog: "sleep", signal: syscall.SIGHUP, want: "signal SIGHUP"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			c := start(t, progSpec(t, tt.prog, tt.args...), -1)
			if tt.signal != 0 {
				c.line(t)
				if err := c.p.Signal(tt.signal); err != nil {
					t.Fatal(err)
				}
			}
			res, err := c.p.Wait()
			if err != nil {
				t.Fatal(err)
			}
			if res.String() != tt.want || res.Success() != tt.success {
				t.Errorf("Result = %q success %v; want %q success %v", res, res.Success(), tt.want, tt.success)
			}
			if res.Duration <= 0 || res.MaxRSS <= 0 {
				t.Errorf("Result = %+v; want a Duration and a MaxRSS", res)
			}
			if err := c.p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("Signal after Wait = %v; want os.ErrProcessDone", err)
			}
			select {
			case <-c.p.Done():
			default:
				t.Error("Done not closed after Wait")
			}
			if res2, err := c.p.Wait(); res2 != res || err != nil {
				t.Errorf("second Wait() = %v, %v; want %v", res2, err, res)
			}
		})
	}
}

// dead waits until pid is gone or a zombie (reparented, waiting for init).
func dead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		// "PID (comm) S ...": the state follows the last ')'.
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && strings.HasPrefix(string(b[i+1:]), " Z") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("process %d still alive", pid)
}

func TestStopEscalates(t *testing.T) {
	spec := progSpec(t, "fork-grandchild")
	spec.StopTimeout = 200 * time.Millisecond
	c := start(t, spec, -1)
	grandchild, err := strconv.Atoi(c.line(t))
	if err != nil {
		t.Fatal(err)
	}
	c.p.Stop()
	c.p.Stop() // a second Stop changes nothing
	res, err := c.p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Signal != syscall.SIGKILL {
		t.Errorf("Result = %v; want signal SIGKILL", res)
	}
	if res.Duration < spec.StopTimeout {
		t.Errorf("killed after %v; want at least the StopTimeout %v", res.Duration, spec.StopTimeout)
	}
	dead(t, grandchild)
}

func TestStopGraceful(t *testing.T) {
	c := start(t, progSpec(t, "sleep"), -1)
	c.line(t)
	c.p.Stop()
	res, err := c.p.Wait()
	if err != nil || res.Signal != syscall.SIGTERM {
		t.Errorf("Wait() = %v, %v; want signal SIGTERM", res, err)
	}
}

func TestStopReachesChildThatLeftGroup(t *testing.T) {
	// A child that left its process group still gets Stop's SIGTERM.
	c := start(t, progSpec(t, "leave-group"), -1)
	if l := c.line(t); l != "ready" {
		t.Fatalf("child says %q", l)
	}
	c.p.Stop()
	res, err := c.p.Wait()
	if err != nil || res.Signal != syscall.SIGTERM {
		t.Errorf("Wait() = %v, %v; want signal SIGTERM", res, err)
	}
}

func TestStopBeforeWait(t *testing.T) {
	// The escalation is Wait's: a Wait that starts after the deadline
	// kills at once.
	spec := progSpec(t, "ignore-sigterm")
	spec.StopTimeout = time.Millisecond
	c := start(t, spec, -1)
	c.line(t)
	c.p.Stop()
	time.Sleep(20 * time.Millisecond)
	res, err := c.p.Wait()
	if err != nil || res.Signal != syscall.SIGKILL {
		t.Errorf("Wait() = %v, %v; want signal SIGKILL", res, err)
	}
}

func TestWaitKillsLeftovers(t *testing.T) {
	c := start(t, progSpec(t, "fork-grandchild-exit"), -1)
	grandchild, err := strconv.Atoi(c.line(t))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.p.Wait()
	if err != nil || !res.Success() {
		t.Fatalf("Wait() = %v, %v", res, err)
	}
	dead(t, grandchild)
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name   string
		spec   spawn.Spec
		is     error
		prefix string
	}{
		{name: "relative", spec: spawn.Spec{Path: "true", Umask: -1}, prefix: "spawn true: "},
		{name: "missing", spec: spawn.Spec{Path: "/nonexistent/x", Umask: -1}, is: fs.ErrNotExist, prefix: "spawn /nonexistent/x: "},
		{name: "missing-helper", spec: spawn.Spec{Path: "/nonexistent/x", Umask: 0o22}, is: fs.ErrNotExist, prefix: "spawn /nonexistent/x: exec: "},
		{name: "dir", spec: spawn.Spec{Path: "/bin/true", Dir: "/nonexistent", Umask: -1}, is: fs.ErrNotExist},
		{name: "dir-helper", spec: spawn.Spec{Path: "/bin/true", Dir: "/nonexistent", Umask: 0o22}, is: fs.ErrNotExist, prefix: "spawn /bin/true: chdir /nonexistent: "},
		{name: "bad-limit", spec: spawn.Spec{Path: "/bin/true", Umask: -1, Limits: []spawn.Rlimit{{Resource: unix.RLIMIT_NOFILE, Cur: 10, Max: 5}}},
			is: syscall.EINVAL, prefix: "spawn /bin/true: setrlimit RLIMIT_NOFILE: "},
	}
	fdsBefore := openFDs(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := spawn.Start(&tt.spec)
			if err == nil {
				_, _ = p.Wait()
				t.Fatal("Start succeeded; want an error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Start error %q is not %v", err, tt.is)
			}
			if !strings.HasPrefix(err.Error(), tt.prefix) {
				t.Errorf("Start error %q; want prefix %q", err, tt.prefix)
			}
		})
	}
	// A child that failed before exec was reaped, and its pidfd closed.
	var ws syscall.WaitStatus
	if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid > 0 {
		t.Errorf("a failed child was left to reap: pid %d (%v)", pid, err)
	}
	if after := openFDs(t); after != fdsBefore {
		t.Errorf("%d open descriptors after the failed starts, %d before", after, fdsBefore)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestChildGetsOriginalNofile: Go raises its own RLIMIT_NOFILE soft limit
// at start-up; a child gets the limit acceptd was started with, as from
// syscall.ForkExec. The test binary is run again by a shell that lowers
// the soft limit to 512 first.
func TestChildGetsOriginalNofile(t *testing.T) {
	if os.Getenv(nofileProbeEnv) != "" {
		t.Skip("the probe itself")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var hard unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &hard); err != nil || hard.Max < 1024 {
		t.Skipf("hard RLIMIT_NOFILE %d, %v", hard.Max, err)
	}
	cmd := exec.Command("/bin/sh", "-c", `ulimit -Sn 512 && exec "$0" -test.run='^TestMain$'`, self)
	cmd.Env = append(os.Environ(), nofileProbeEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "raised true; child 512" {
		t.Errorf("probe said %q; want %q", got, "raised true; child 512")
	}
}

// statusField returns the value of "Name:" in /proc/PID/status text.
func statusField(status, name string) string {
	for l := range strings.SplitSeq(status, "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "(missing)"
}

func TestHelperSettings(t *testing.T) {
	spec := progSpec(t, "status")
	spec.Limits = []spawn.Rlimit{
		{Resource: unix.RLIMIT_NOFILE, Cur: 123, Max: 456},
		{Resource: unix.RLIMIT_CORE, Cur: 0, Max: 0},
	}
	spec.NoNewPrivs = true
	spec.Umask = 0o027
	spec.ListenPID = true
	spec.Env = append(spec.Env, "LISTEN_PID=1", "LISTEN_FDS=1")
	c := start(t, spec, -1)
	out, res := c.all(t)
	if !res.Success() {
		t.Fatalf("child: %v\n%s", res, out)
	}
	for name, want := range map[string]string{"NoNewPrivs": "1", "Umask": "0027"} {
		if got := statusField(out, name); got != want {
			t.Errorf("%s = %q; want %q", name, got, want)
		}
	}
	for _, want := range []string{
		"Max open files            123                  456                  files",
		"Max core file size        0                    0                    bytes",
		"LISTEN_PID=" + strconv.Itoa(c.p.Pid()) + " pid=" + strconv.Itoa(c.p.Pid()),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
}

func TestPlainPathInherits(t *testing.T) {
	// Without helper settings the child gets no no_new_privs and no
	// LISTEN_PID. (Its NOFILE soft limit: TestChildGetsOriginalNofile.)
	out, _ := start(t, progSpec(t, "status"), -1).all(t)
	if got := statusField(out, "NoNewPrivs"); got != "0" {
		t.Errorf("NoNewPrivs = %q; want 0", got)
	}
	if !strings.Contains(out, "LISTEN_PID= ") {
		t.Errorf("LISTEN_PID set on the plain path:\n%s", out)
	}
}

func TestSignalStateAsOsExec(t *testing.T) {
	// The child gets the signal state os/exec gives: the mask from
	// before the fork (the runtime blocks every signal across it) and
	// what was ignored still ignored. SIGUSR2 is ignored for the test, so
	// that "still ignored" is seen. CLONE_CLEAR_SIGHAND guards the moment
	// between the mask's restore and execve, which no test can hit on
	// purpose.
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Skip("no cat: ", err)
	}
	signal.Ignore(syscall.SIGUSR2)
	defer signal.Reset(syscall.SIGUSR2)
	ref, err := exec.Command(cat, "/proc/self/status").Output()
	if err != nil {
		t.Fatal(err)
	}
	spec := &spawn.Spec{Path: cat, Args: []string{cat, "/proc/self/status"}, Umask: -1}
	out, _ := start(t, spec, -1).all(t)
	// (SigCgt is not compared: execve resets every handler whatever the
	// child did, so it could not tell anything.)
	for _, f := range []string{"SigBlk", "SigIgn"} {
		if got, want := statusField(out, f), statusField(string(ref), f); got != want {
			t.Errorf("%s = %s; os/exec's child has %s", f, got, want)
		}
	}
	if ign, _ := strconv.ParseUint(statusField(out, "SigIgn"), 16, 64); ign&(1<<(syscall.SIGUSR2-1)) == 0 {
		t.Errorf("SIGUSR2 not ignored in the child: SigIgn = %x", ign)
	}
}

// exeForUser copies the test binary where an unprivileged user can run it
// (go test builds in a 0700 directory).
func exeForUser(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "acd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(testExe(t))
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "spawn.test")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

func TestCredential(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	exe := exeForUser(t)
	for _, helper := range []bool{false, true} {
		t.Run("helper="+strconv.FormatBool(helper), func(t *testing.T) {
			spec := progSpec(t, "status")
			spec.Path = exe
			spec.Credential = &syscall.Credential{Uid: 65534, Gid: 65534}
			if helper {
				spec.Limits = []spawn.Rlimit{{Resource: unix.RLIMIT_NOFILE, Cur: 100, Max: 200}}
				spec.Dir = "/"
			}
			out, res := start(t, spec, -1).all(t)
			if !res.Success() {
				t.Fatalf("child: %v\n%s", res, out)
			}
			for name, want := range map[string]string{
				"Uid":    "65534 65534 65534 65534",
				"Gid":    "65534 65534 65534 65534",
				"Groups": "",
			} {
				if got := statusField(out, name); got != want {
					t.Errorf("%s = %q; want %q", name, got, want)
				}
			}
			if helper && !strings.Contains(out, "Max open files            100                  200") {
				t.Errorf("limit not applied:\n%s", out)
			}
		})
	}
}

// zombies reports whether this process has an unreaped child, without
// reaping it.
func zombies(t *testing.T) bool {
	t.Helper()
	var info unix.Siginfo
	err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	if errors.Is(err, unix.ECHILD) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return info.Signo != 0
}

func TestNoLeaks(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	nfd := int(null.Fd())
	before := openFDs(t)
	deadline := time.Now().Add(30 * time.Second)
	n := 0
	for ; n < 2000 && time.Now().Before(deadline); n++ {
		p, err := spawn.Start(&spawn.Spec{Path: "/bin/true", Files: []int{nfd, nfd, nfd}, Umask: -1})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := p.Wait(); err != nil || !res.Success() {
			t.Fatalf("Wait() = %v, %v", res, err)
		}
	}
	if n < 2000 {
		t.Logf("only %d spawns in the time bound", n)
	}
	if zombies(t) {
		t.Error("a zombie is left")
	}
	if after := openFDs(t); after != before {
		t.Errorf("open fds: %d before %d spawns, %d after", before, n, after)
	}
}

func TestWaitAfterForeignReap(t *testing.T) {
	// Somebody else reaped the child: Wait reports it (the pid may
	// belong to another process by now) instead of waiting, killing a
	// group or reaping.
	c := start(t, progSpec(t, "sleep", "30"), -1)
	pid := c.p.Pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.p.Wait(); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, unix.ECHILD) {
			t.Errorf("Wait = %v; want ECHILD", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait still waiting for a child reaped by somebody else")
	}
}

// TestNoExecWait: a child that cannot run its program is started
// without an error; Wait reports the failure as ExecErr, with status
// 253, and nothing of it is left.
func TestNoExecWait(t *testing.T) {
	if spawn.RaceEnabled {
		t.Skip("the race detector's build waits for the exec")
	}
	tests := []struct {
		name   string
		spec   spawn.Spec
		prefix string
	}{
		{name: "missing", spec: spawn.Spec{Path: "/nonexistent/x", Umask: -1, NoExecWait: true}, prefix: "spawn /nonexistent/x: "},
		{name: "dir", spec: spawn.Spec{Path: "/bin/true", Dir: "/nonexistent", Umask: -1, NoExecWait: true}, prefix: "spawn /bin/true: "},
	}
	fdsBefore := openFDs(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := spawn.Start(&tt.spec)
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			res, err := p.Wait()
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if !errors.Is(res.ExecErr, fs.ErrNotExist) || !strings.HasPrefix(res.ExecErr.Error(), tt.prefix) {
				t.Errorf("ExecErr %v; want ENOENT with prefix %q", res.ExecErr, tt.prefix)
			}
			if !res.Exited || res.ExitCode != 253 {
				t.Errorf("result %v; want exit status 253", res)
			}
		})
	}
	p, err := spawn.Start(&spawn.Spec{Path: "/bin/true", Umask: -1, NoExecWait: true})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := p.Wait(); err != nil || res.ExecErr != nil || !res.Success() {
		t.Errorf("/bin/true: %v, %v", res, err)
	}
	var ws syscall.WaitStatus
	if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid > 0 {
		t.Errorf("a child was left to reap: pid %d (%v)", pid, err)
	}
	if after := openFDs(t); after != fdsBefore {
		t.Errorf("%d open descriptors after, %d before", after, fdsBefore)
	}
}

// TestNoExecWaitSuite runs the tests of what a child gets and how it
// ends again with every progSpec child started NoExecWait (on a stack of
// its own, beside the test process, instead of on the suspended
// spawning thread's).
func TestNoExecWaitSuite(t *testing.T) {
	if os.Getenv(besideEnv) != "" || spawn.RaceEnabled {
		t.Skip("already beside, or the race detector's build (which waits for the exec)")
	}
	cmd := exec.Command(os.Args[0], "-test.count=1", "-test.run",
		"^Test(Files|ClosedStdio|StdinBlocking|Echo|EnvExact|ProcessGroup|Result|Stop.*|WaitKillsLeftovers|SignalStateAsOsExec|Credential|NoLeaks|WaitAfterForeignReap|Chroot|CgroupFD)$")
	cmd.Env = append(os.Environ(), besideEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "PASS") {
		t.Fatalf("no PASS:\n%s", out)
	}
}
