package spawn_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/acceptd/acceptd/spawn"
	"github.com/acceptd/acceptd/spawn/cgroup"
)

// sandboxReport is the "sandbox" test program: one NAME=VALUE line per
// thing a sandbox setting changes.
func sandboxReport() int {
	var devs []string
	if b, err := os.ReadFile("/proc/net/dev"); err == nil {
		for _, l := range strings.Split(string(b), "\n")[2:] {
			if name, _, ok := strings.Cut(l, ":"); ok {
				devs = append(devs, strings.TrimSpace(name))
			}
		}
	}
	say("netdevs=%s\n", strings.Join(devs, ","))
	lo := "down"
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			lo = "up"
			c.Close()
		}
		ln.Close()
	}
	say("lo=%s\npid=%d\n", lo, os.Getpid())
	for _, ns := range []string{"net", "mnt"} {
		l, _ := os.Readlink("/proc/self/ns/" + ns)
		say("%sns=%s\n", ns, l)
	}
	var names []string
	if ents, err := os.ReadDir("/tmp"); err == nil {
		for _, e := range ents {
			names = append(names, e.Name())
		}
	}
	say("tmp=%s\n", strings.Join(names, ","))
	if err := os.WriteFile("/tmp/sandbox-"+strconv.Itoa(os.Getpid()), nil, 0o600); err != nil {
		say("tmpwrite=%v\n", err)
	}
	cg, _ := os.ReadFile("/proc/self/cgroup")
	for _, l := range strings.Split(string(cg), "\n") {
		if v, ok := strings.CutPrefix(l, "0::"); ok {
			say("cgroup=%s\n", v)
		}
	}
	wd, _ := os.Getwd()
	_, err := os.Stat("/etc/passwd")
	say("cwd=%s\npasswd=%v\n", wd, err == nil)
	return 0
}

// sandboxRun runs the "sandbox" program with spec changed by edit and
// returns its lines as a map.
func sandboxRun(t *testing.T, edit func(*spawn.Spec)) map[string]string {
	t.Helper()
	spec := progSpec(t, "sandbox")
	edit(spec)
	out, res := start(t, spec, -1).all(t)
	if !res.Success() {
		t.Fatalf("child: %v\n%s", res, out)
	}
	m := map[string]string{}
	defer func() {
		if !spec.PrivateTmp {
			os.Remove("/tmp/sandbox-" + m["pid"])
		}
	}()
	for l := range strings.SplitSeq(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func TestPrivateNetwork(t *testing.T) {
	needRoot(t)
	self, _ := os.Readlink("/proc/self/ns/net")
	got := sandboxRun(t, func(s *spawn.Spec) { s.PrivateNetwork = true })
	if got["netdevs"] != "lo" || got["lo"] != "up" || got["netns"] == self {
		t.Errorf("private network: %v (ours %s)", got, self)
	}
	plain := sandboxRun(t, func(*spawn.Spec) {})
	if plain["netns"] != self {
		t.Errorf("plain child in netns %s; ours %s", plain["netns"], self)
	}
}

func TestPrivateTmp(t *testing.T) {
	needRoot(t)
	selfMnt, _ := os.Readlink("/proc/self/ns/mnt")
	// The program must live outside /tmp, which it will not see.
	exe := exeOutsideTmp(t)
	a := sandboxRun(t, func(s *spawn.Spec) { s.Path, s.PrivateTmp = exe, true })
	b := sandboxRun(t, func(s *spawn.Spec) { s.Path, s.PrivateTmp = exe, true })
	// Each found an empty /tmp, though the other wrote to its own. (The
	// two namespaces may show the same inode number: a ended, and its
	// number was free again, before b began.)
	if a["tmp"] != "" || b["tmp"] != "" || a["mntns"] == selfMnt || b["mntns"] == selfMnt || a["tmpwrite"] != "" {
		t.Errorf("private tmp: %v / %v (ours %s)", a, b, selfMnt)
	}
	// Nothing reached the host's /tmp.
	for _, pid := range []string{a["pid"], b["pid"]} {
		if _, err := os.Stat("/tmp/sandbox-" + pid); err == nil {
			t.Errorf("host /tmp has the file of %s", pid)
			os.Remove("/tmp/sandbox-" + pid)
		}
	}
}

func TestChroot(t *testing.T) {
	needRoot(t)
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox to run in the chroot")
	}
	root, err := os.MkdirTemp("", "acd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	// busybox and the libraries ldd lists, at their own paths.
	ldd, _ := exec.Command("ldd", busybox).Output()
	files := map[string]string{busybox: "/busybox"}
	for _, f := range strings.Fields(string(ldd)) {
		if strings.HasPrefix(f, "/") {
			files[f] = f
		}
	}
	for src, dst := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst = filepath.Join(root, dst)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(root, "tmp"), 0o1777)
	const script = "echo cwd=$(/busybox pwd); /busybox test -e /etc/passwd && echo passwd=true; /busybox touch /tmp/x && echo tmp=$(/busybox ls /tmp)"
	for _, helper := range []bool{false, true} {
		t.Run("helper="+strconv.FormatBool(helper), func(t *testing.T) {
			spec := &spawn.Spec{Path: "/busybox", Args: []string{"sh", "-c", script}, Umask: -1, Chroot: root, PrivateTmp: helper}
			out, res := start(t, spec, -1).all(t)
			if !res.Success() {
				t.Fatalf("%v\n%s", res, out)
			}
			if want := "cwd=/\ntmp=x\n"; out != want {
				t.Errorf("output %q; want %q", out, want)
			}
			_, err := os.Stat(filepath.Join(root, "tmp", "x"))
			if helper != os.IsNotExist(err) {
				t.Errorf("helper=%v: x in the chroot's own /tmp: %v", helper, err)
			}
			os.Remove(filepath.Join(root, "tmp", "x"))
		})
	}
}

func TestCgroupFD(t *testing.T) {
	m, err := cgroup.New(mountOrSkip(t), "acceptd-spawntest-"+strconv.Itoa(os.Getpid()), os.Getpid())
	if err != nil {
		t.Skip(err)
	}
	defer m.Close()
	for _, helper := range []bool{false, true} {
		t.Run("helper="+strconv.FormatBool(helper), func(t *testing.T) {
			g, err := m.Create("t", cgroup.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Remove()
			got := sandboxRun(t, func(s *spawn.Spec) {
				s.UseCgroupFD, s.CgroupFD = true, g.FD()
				s.NoNewPrivs = helper
			})
			if want := strings.TrimPrefix(g.Path(), mountOrSkip(t)); got["cgroup"] != want {
				t.Errorf("child in cgroup %q; want %q", got["cgroup"], want)
			}
		})
	}
}

// exeOutsideTmp copies the test binary to /dev/shm: a private /tmp hides
// the go test build directory.
func exeOutsideTmp(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "acd")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
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

func mountOrSkip(t testing.TB) string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for l := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(l, " - cgroup2 ") {
			f := strings.Fields(l)
			if f[3] == "/" {
				return f[4]
			}
		}
	}
	t.Skip("no cgroup2 mount")
	return ""
}
