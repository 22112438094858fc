package cgroup

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acceptd/acceptd/spawn"
)

// testManager is a Manager under a top directory of the test's own, or
// skips when the host has no writable cgroup2 hierarchy.
func testManager(t *testing.T) *Manager {
	t.Helper()
	mount, err := findMount("/proc/self/mountinfo")
	if err != nil {
		t.Skip(err)
	}
	top := "acceptd-test-" + strconv.Itoa(os.Getpid())
	m, err := New(mount, top, os.Getpid())
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(m.top); err == nil {
			t.Errorf("%s left behind", m.top)
		}
	})
	return m
}

func poll(d time.Duration, f func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if f() {
			return true
		}
	}
	return f()
}

func TestKillFindsSetsidGrandchild(t *testing.T) {
	m := testManager(t)
	g, err := m.Create("svc@0", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := spawn.Start(&spawn.Spec{
		Path: "/bin/sh",
		// sh waits until the grandchild has its own session (field 6 of
		// its stat): exiting earlier, it would take the grandchild down
		// with its process group, which spawn kills when sh ends.
		Args: []string{"sh", "-c", `setsid sleep 60 </dev/null >/dev/null 2>&1 & p=$!
while [ "$(cut -d' ' -f6 /proc/$p/stat)" != "$p" ]; do :; done
echo $p`},
		Files: []int{-1, int(w.Fd()), -1}, Umask: -1,
		UseCgroupFD: true, CgroupFD: g.FD(),
	})
	w.Close()
	g.CloseFD()
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(r).ReadString('\n')
	gc, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("sh said %q", line)
	}
	if res, err := p.Wait(); err != nil || !res.Success() {
		t.Fatalf("sh: %v %v", res, err)
	}
	// The grandchild left the process group and the session: only the
	// cgroup still knows it.
	if pop, err := g.Populated(); err != nil || !pop {
		t.Fatalf("Populated = %v, %v; want true", pop, err)
	}
	if pids, _ := g.Pids(); len(pids) != 1 || pids[0] != gc {
		t.Errorf("Pids = %v; want [%d]", pids, gc)
	}
	if st := g.Stats(); st.Procs != 1 || st.CPUUsageUsec < 0 {
		t.Errorf("Stats = %+v", st)
	}
	if err := g.Remove(); err == nil {
		t.Error("Remove of a populated cgroup succeeded")
	}
	if !g.Reusable() {
		t.Error("a cgroup never killed is not Reusable")
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	if g.Reusable() {
		t.Error("a killed cgroup is still Reusable")
	}
	if !poll(5*time.Second, func() bool { pop, _ := g.Populated(); return !pop }) {
		t.Fatal("cgroup still populated after Kill")
	}
	if syscall.Kill(gc, 0) == nil {
		// Reparented to init, which reaps it; a zombie is gone from the
		// cgroup already.
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(gc) + "/stat"); !strings.Contains(string(b), ") Z") && len(b) > 0 {
			t.Errorf("grandchild %d alive after Kill: %s", gc, b)
		}
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
}

func TestLimits(t *testing.T) {
	m := testManager(t)
	lim := Limits{TasksMax: 7, MemoryMax: 64 << 20}
	g, err := m.Create("svc@1", lim)
	if !m.Available("pids") || !m.Available("memory") {
		// This host's cgroup2 hierarchy lacks the controllers (cgroup
		// v1 has them): Create must say so and leave nothing.
		if err == nil {
			g.Remove()
			t.Fatal("Create with limits succeeded without the controllers")
		}
		if _, serr := os.Stat(filepath.Join(m.base, "svc@1")); serr == nil {
			t.Error("failed Create left its directory")
		}
		t.Logf("as expected here: %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	b, _ := os.ReadFile(filepath.Join(g.Path(), "pids.max"))
	if strings.TrimSpace(string(b)) != "7" {
		t.Errorf("pids.max = %q", b)
	}
}

func TestRemoveStale(t *testing.T) {
	mount, err := findMount("/proc/self/mountinfo")
	if err != nil {
		t.Skip(err)
	}
	top := "acceptd-test-stale-" + strconv.Itoa(os.Getpid())
	// 999999999 is above any pid_max: that acceptd is gone.
	stale := filepath.Join(mount, top, "999999999", "svc@3")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Skip(err)
	}
	m, err := New(mount, top, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(stale)); err == nil {
		t.Error("stale directory kept")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFindMount(t *testing.T) {
	dir := t.TempDir()
	info := filepath.Join(dir, "mountinfo")
	os.WriteFile(info, []byte(`22 1 0:21 / /sys rw shared:7 - sysfs sysfs rw
30 22 0:26 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 /sub /mnt/sub rw - cgroup2 cgroup2 rw
32 30 0:27 / /sys/fs/cgroup/un\040ified rw,nosuid - cgroup2 cgroup2 rw
`), 0o644)
	got, err := findMount(info)
	if err != nil || got != "/sys/fs/cgroup/un ified" {
		t.Errorf("findMount = %q, %v", got, err)
	}
	os.WriteFile(info, []byte("22 1 0:21 / /sys rw - sysfs sysfs rw\n"), 0o644)
	if _, err := findMount(info); err == nil {
		t.Error("found a cgroup2 mount in a table without one")
	}
}
