package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/internal/testutil"
)

// sandboxEnv makes the test binary a sandbox-reporting per-connection
// program (checked in init, like backendEnv): "report" prints a
// sandboxReport as one JSON line and holds the connection until the
// client closes it; "setsid" starts a grandchild in a session of its own
// that outlives it, prints "PID", and exits.
const sandboxEnv = "ACCEPTD_TEST_SANDBOX"

func init() {
	switch os.Getenv(sandboxEnv) {
	case "":
	case "report", "report-tmp":
		b, _ := json.Marshal(reportSandbox())
		os.Stdout.Write(append(b, '\n'))
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	case "setsid":
		gc := exec.Command("/bin/sleep", "60")
		gc.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := gc.Start(); err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("%d\n", gc.Process.Pid)
		os.Exit(0)
	default:
		os.Exit(2)
	}
}

// sandboxReport is what a per-connection program sees of its box.
type sandboxReport struct {
	Pid        int      `json:"pid"`
	Uid        string   `json:"uid"` // the lines of /proc/self/status
	Gid        string   `json:"gid"`
	Groups     string   `json:"groups"`
	NoNewPrivs string   `json:"no_new_privs"`
	Umask      string   `json:"umask"`
	Limits     string   `json:"limits"` // /proc/self/limits
	FDs        []string `json:"fds"`
	Cgroup     string   `json:"cgroup"`
	NetNS      string   `json:"netns"`
	MntNS      string   `json:"mntns"`
	NetDevs    []string `json:"netdevs"`
	Tmp        []string `json:"tmp"` // /tmp before this program wrote its own file there
}

func reportSandbox() sandboxReport {
	r := sandboxReport{Pid: os.Getpid(), Tmp: []string{}}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			k, v, _ := strings.Cut(l, ":")
			v = strings.Join(strings.Fields(v), " ")
			switch k {
			case "Uid":
				r.Uid = v
			case "Gid":
				r.Gid = v
			case "Groups":
				r.Groups = v
			case "NoNewPrivs":
				r.NoNewPrivs = v
			case "Umask":
				r.Umask = v
			}
		}
	}
	b, _ := os.ReadFile("/proc/self/limits")
	r.Limits = string(b)
	// The inherited descriptors: the Go runtime opens its own
	// close-on-exec.
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range ents {
			fd, _ := strconv.Atoi(e.Name())
			if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
				r.FDs = append(r.FDs, e.Name())
			}
		}
	}
	b, _ = os.ReadFile("/proc/self/cgroup")
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "0::"); ok {
			r.Cgroup = v
		}
	}
	r.NetNS, _ = os.Readlink("/proc/self/ns/net")
	r.MntNS, _ = os.Readlink("/proc/self/ns/mnt")
	b, _ = os.ReadFile("/proc/net/dev")
	for i, l := range strings.Split(string(b), "\n") {
		if name, _, ok := strings.Cut(l, ":"); ok && i >= 2 {
			r.NetDevs = append(r.NetDevs, strings.TrimSpace(name))
		}
	}
	if ents, err := os.ReadDir("/tmp"); err == nil {
		for _, e := range ents {
			r.Tmp = append(r.Tmp, e.Name())
		}
	}
	// The marker of the private_tmp test ("report-tmp"): only there, or
	// it would litter the host's /tmp, and a reused pid would later look
	// like a leak.
	if os.Getenv(sandboxEnv) == "report-tmp" {
		os.WriteFile("/tmp/sandbox-"+strconv.Itoa(os.Getpid()), nil, 0o600)
	}
	return r
}

// sandboxProg copies the test binary outside /tmp (which private_tmp
// hides) into a directory every user may enter, and returns the exec
// lines that run it in mode.
func sandboxProg(t *testing.T, mode string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "acd")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	exe := filepath.Join(dir, "prog")
	if err := copyFile(bins.prog, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("command = [%q]\n    environment = { %s = %q }\n", exe, sandboxEnv, mode)
}

// openReports opens n connections and reads each one's report; a
// connection closed without one is returned as nil.
func openReports(t *testing.T, addr string, n int) ([]net.Conn, []*sandboxReport) {
	t.Helper()
	conns := make([]net.Conn, n)
	reps := make([]*sandboxReport, n)
	var wg sync.WaitGroup
	for i := range n {
		conns[i] = dial(t, addr)
		wg.Go(func() {
			c := conns[i]
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return
			}
			var r sandboxReport
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Errorf("report %q: %v", line, err)
				return
			}
			reps[i] = &r
		})
	}
	wg.Wait()
	return conns, reps
}

// userDB returns the ids of /etc/passwd and /etc/group.
func userDB(t *testing.T) map[string]bool {
	ids := map[string]bool{}
	for _, f := range []string{"/etc/passwd", "/etc/group"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.SplitSeq(string(b), "\n") {
			if p := strings.Split(l, ":"); len(p) > 2 {
				ids[f+":"+p[2]] = true
			}
		}
	}
	return ids
}

const uidLockDir = "/run/acceptd/dynamic-uid"

// uidsFreed waits until no lock file of uids is left.
func uidsFreed(t *testing.T, uids []int) {
	t.Helper()
	testutil.WaitFor(t, 15*time.Second, "dynamic UIDs released", func() bool {
		for _, u := range uids {
			if _, err := os.Stat(filepath.Join(uidLockDir, strconv.Itoa(u))); err == nil {
				return false
			}
		}
		return true
	})
}

func firstField(s string) int {
	f := strings.Fields(s)
	if len(f) == 0 {
		return -1
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

func TestSandboxDynamicUsers(t *testing.T) {
	testutil.RequireRoot(t)
	d := startDaemon(t, `
dynamic_users { range = "62000-62999" }
service "dyn" {
  listen = ["127.0.0.1:{{PORT}}"]
  max_connections = 64
  exec {
    `+sandboxProg(t, "report")+`
    dynamic_user = true
    stderr = "null"
  }
}
`, daemonOpts{})
	const n = 50
	conns, reps := openReports(t, d.addr(0), n)
	db := userDB(t)
	seen := map[int]bool{}
	var uids []int
	for i, r := range reps {
		if r == nil {
			t.Fatalf("connection %d got no report", i)
		}
		uid := firstField(r.Uid)
		if r.Uid != strings.Repeat(strconv.Itoa(uid)+" ", 3)+strconv.Itoa(uid) || r.Gid != r.Uid {
			t.Errorf("uid %q gid %q; want one id everywhere, gid = uid", r.Uid, r.Gid)
		}
		if uid < 62000 || uid > 62999 || seen[uid] || db["/etc/passwd:"+strconv.Itoa(uid)] || db["/etc/group:"+strconv.Itoa(uid)] {
			t.Errorf("uid %d: out of range, repeated or in the user database", uid)
		}
		if r.Groups != "" || r.NoNewPrivs != "1" {
			t.Errorf("groups %q no_new_privs %q; want none and 1", r.Groups, r.NoNewPrivs)
		}
		seen[uid] = true
		uids = append(uids, uid)
	}
	// The status shows each instance's UID and GID.
	st := d.service("dyn")
	if len(st.Instances) != n {
		t.Fatalf("%d instances in status; want %d", len(st.Instances), n)
	}
	for _, in := range st.Instances {
		if !seen[in.UID] || in.GID != in.UID {
			t.Errorf("status instance %s uid %d gid %d", in.Name, in.UID, in.GID)
		}
		if _, err := os.Stat(filepath.Join(uidLockDir, strconv.Itoa(in.UID))); err != nil {
			t.Errorf("no lock file for held uid %d: %v", in.UID, err)
		}
	}
	closeAll(conns)
	uidsFreed(t, uids)
	ends := d.waitLogs("connection ended", n)
	if ends[0]["uid"] == nil || ends[0]["gid"] == nil {
		t.Errorf("log line without uid/gid: %v", ends[0])
	}
	d.stop()
}

func TestSandboxDynamicUserExhausted(t *testing.T) {
	testutil.RequireRoot(t)
	d := startDaemon(t, `
dynamic_users { range = "63000-63015" }
service "dyn16" {
  listen = ["127.0.0.1:{{PORT}}"]
  exec {
    `+sandboxProg(t, "report")+`
    dynamic_user = true
    stderr = "null"
  }
}
`, daemonOpts{})
	conns, reps := openReports(t, d.addr(0), 20)
	served := 0
	for _, r := range reps {
		if r != nil {
			served++
		}
	}
	if served != 16 {
		t.Errorf("%d of 20 served; want 16", served)
	}
	st := d.service("dyn16")
	if st.RefusedReasons["dynamic_user"] != 4 {
		t.Errorf("refused %v; want dynamic_user: 4", st.RefusedReasons)
	}
	refusals := d.waitLogs("connection refused", 4)
	for _, e := range refusals {
		if e.str("reason") != "dynamic_user" {
			t.Errorf("refusal logged as %v", e)
		}
	}
	closeAll(conns)
	// The daemon keeps serving once UIDs are free.
	testutil.WaitFor(t, 15*time.Second, "instances ended", func() bool { return d.service("dyn16").Connected == 0 })
	c, rs := openReports(t, d.addr(0), 1)
	if rs[0] == nil {
		t.Error("not served after the UIDs came back")
	}
	closeAll(c)
	d.stop()
}

func TestSandboxDynamicUserTwoDaemons(t *testing.T) {
	testutil.RequireRoot(t)
	body := `
dynamic_users { range = "63100-63107" }
service "dyn8" {
  listen = ["127.0.0.1:{{PORT}}"]
  exec {
    ` + sandboxProg(t, "report") + `
    dynamic_user = true
    stderr = "null"
  }
}
`
	a := startDaemon(t, body, daemonOpts{})
	b := startDaemon(t, body, daemonOpts{})
	ca, ra := openReports(t, a.addr(0), 5)
	cb, rb := openReports(t, b.addr(0), 5)
	owner := map[int]string{}
	for name, reps := range map[string][]*sandboxReport{"a": ra, "b": rb} {
		for _, r := range reps {
			if r == nil {
				continue
			}
			uid := firstField(r.Uid)
			if owner[uid] != "" {
				t.Errorf("uid %d handed out by %s and %s", uid, owner[uid], name)
			}
			owner[uid] = name
		}
	}
	if len(owner) != 8 {
		t.Errorf("%d UIDs in use of a range of 8: %v", len(owner), owner)
	}
	if got := b.service("dyn8").RefusedReasons["dynamic_user"]; got != 2 {
		t.Errorf("second daemon refused %d; want 2", got)
	}
	closeAll(ca)
	closeAll(cb)
	a.stop()
	b.stop()
}

func TestSandboxSetsidGrandchild(t *testing.T) {
	testutil.RequireRoot(t)
	d := startDaemon(t, `
dynamic_users { range = "63200-63201" }
service "esc" {
  listen = ["127.0.0.1:{{PORT}}"]
  exec {
    `+sandboxProg(t, "setsid")+`
    dynamic_user = true
    stderr = "null"
  }
}
`, daemonOpts{})
	if len(d.logs("per-instance cgroups")) == 0 {
		d.stop()
		t.Skip("no per-instance cgroups on this host; server tests cover the process-group path")
	}
	line := strings.TrimSpace(request(t, d.addr(0), ""))
	gc, err := strconv.Atoi(line)
	if err != nil {
		t.Fatalf("program said %q", line)
	}
	// The child has exited, and its instance with it: the grandchild
	// that left the process group and the session is killed all the same.
	testutil.WaitFor(t, 15*time.Second, "setsid grandchild killed", func() bool { return !alive(gc) })
	d.waitLogs("connection ended", 1)
	testutil.WaitFor(t, 15*time.Second, "UID released", func() bool {
		ents, _ := os.ReadDir(uidLockDir)
		for _, e := range ents {
			if e.Name() == "63200" || e.Name() == "63201" {
				return false
			}
		}
		return true
	})
	d.stop()
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	st, err := testutil.ReadStat(pid)
	return err == nil && st.State != 'Z'
}

func TestSandboxFixedUserGroups(t *testing.T) {
	testutil.RequireRoot(t)
	d := startDaemon(t, `
service "fixed" {
  listen = ["127.0.0.1:{{PORT}}"]
  exec {
    `+sandboxProg(t, "report")+`
    user  = "daemon"
    group = "nogroup"
    stderr = "null"
  }
}
`, daemonOpts{})
	conns, reps := openReports(t, d.addr(0), 1)
	r := reps[0]
	if r == nil {
		t.Fatal("no report")
	}
	// daemon's own groups (as `id daemon` lists them), none of root's.
	u, err := user.Lookup("daemon")
	if err != nil {
		t.Skip(err)
	}
	want, _ := u.GroupIds()
	slices.SortFunc(want, func(a, b string) int { return firstField(a) - firstField(b) })
	if r.Groups != strings.Join(want, " ") || strings.Contains(" "+r.Groups+" ", " 0 ") {
		t.Errorf("groups %q; want %q", r.Groups, strings.Join(want, " "))
	}
	if firstField(r.Uid) != 1 || firstField(r.Gid) != 65534 {
		t.Errorf("uid %q gid %q; want daemon (1) and nogroup (65534)", r.Uid, r.Gid)
	}
	closeAll(conns)
	d.stop()
}

func TestSandboxPrivateNetworkAndTmp(t *testing.T) {
	testutil.RequireRoot(t)
	d := startDaemon(t, `
service "box" {
  listen = ["127.0.0.1:{{PORT}}"]
  exec {
    `+sandboxProg(t, "report-tmp")+`
    private_network = true
    private_tmp     = true
    umask           = "0027"
    limits { nofile = 77 }
    stderr = "null"
  }
}
`, daemonOpts{})
	ours, _ := os.Readlink("/proc/self/ns/net")
	oursMnt, _ := os.Readlink("/proc/self/ns/mnt")
	// Two at once: neither sees the file the other wrote in its /tmp.
	c1, r1 := openReports(t, d.addr(0), 1)
	c2, r2 := openReports(t, d.addr(0), 1)
	for _, r := range []*sandboxReport{r1[0], r2[0]} {
		if r == nil {
			t.Fatal("no report: the instance did not serve its client")
		}
		if strings.Join(r.NetDevs, ",") != "lo" || r.NetNS == ours {
			t.Errorf("net devices %v in %s (ours %s); want lo only, own namespace", r.NetDevs, r.NetNS, ours)
		}
		if len(r.Tmp) != 0 || r.MntNS == oursMnt {
			t.Errorf("/tmp has %v in %s; want empty, own namespace", r.Tmp, r.MntNS)
		}
		if r.Umask != "0027" || !strings.Contains(r.Limits, "Max open files            77                   77") {
			t.Errorf("umask %q limits\n%s", r.Umask, r.Limits)
		}
		if strings.Join(r.FDs, " ") != "0 1 2" {
			t.Errorf("inherited fds %v; want 0 1 2", r.FDs)
		}
	}
	for _, r := range []*sandboxReport{r1[0], r2[0]} {
		if _, err := os.Stat("/tmp/sandbox-" + strconv.Itoa(r.Pid)); err == nil {
			t.Errorf("the private /tmp file of %d reached the host", r.Pid)
		}
	}
	// The connection still works both ways inside the namespace.
	fmt.Fprintf(c1[0], "bye\n")
	closeAll(c1)
	closeAll(c2)
	d.stop()
}
