package uidpool

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testPool is a Pool whose files all live in a temp dir.
func testPool(t *testing.T, first, last uint32, passwd, group string) *Pool {
	t.Helper()
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p, err := New(first, last, Options{
		Dir:        filepath.Join(dir, "locks"),
		Passwd:     write("passwd", passwd),
		Group:      write("group", group),
		SystemdDir: filepath.Join(dir, "systemd"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for uid := first; uid <= last; uid++ {
			p.Release(uid)
		}
	})
	return p
}

func TestDistinctAndExhausted(t *testing.T) {
	p := testPool(t, 100, 115, "", "")
	seen := map[uint32]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			uid, err := p.Acquire("x")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[uid] || uid < 100 || uid > 115 {
				t.Errorf("uid %d handed out twice or out of range", uid)
			}
			seen[uid] = true
		})
	}
	wg.Wait()
	if _, err := p.Acquire("x"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("17th Acquire: %v; want ErrExhausted", err)
	}
	if p.Held() != 16 {
		t.Errorf("Held() = %d", p.Held())
	}
	ents, _ := os.ReadDir(p.Dir())
	if len(ents) != 16 {
		t.Errorf("%d lock files; want 16", len(ents))
	}
	b, _ := os.ReadFile(filepath.Join(p.Dir(), "107"))
	if want := strconv.Itoa(os.Getpid()) + " x\n"; string(b) != want {
		t.Errorf("lock file says %q; want %q", b, want)
	}
	p.Release(107)
	if uid, err := p.Acquire("y"); err != nil || uid != 107 {
		t.Errorf("after release: %d, %v; want 107", uid, err)
	}
	for uid := uint32(100); uid <= 115; uid++ {
		p.Release(uid)
	}
	if ents, _ := os.ReadDir(p.Dir()); len(ents) != 0 || p.Held() != 0 {
		t.Errorf("after releasing all: %d files, %d held", len(ents), p.Held())
	}
}

func TestRotates(t *testing.T) {
	// A freed UID is not the next one handed out: whatever the last
	// instance left behind (files in world-writable places) is less
	// likely to meet the next one.
	p := testPool(t, 10, 13, "", "")
	a, _ := p.Acquire("")
	p.Release(a)
	b, _ := p.Acquire("")
	if a == b {
		t.Errorf("freed uid %d handed out again at once", a)
	}
}

func TestUserDatabase(t *testing.T) {
	p := testPool(t, 1000, 1003,
		"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n+nis::::::\n",
		"root:x:0:\nstaff:x:1002:alice\n")
	got := map[uint32]bool{}
	for {
		uid, err := p.Acquire("")
		if err != nil {
			break
		}
		got[uid] = true
	}
	if len(got) != 2 || !got[1001] || !got[1003] {
		t.Fatalf("got %v; want 1001 and 1003 (1000 is a user, 1002 a group)", got)
	}
	p.Release(1001)
	p.Release(1003)
	// A user added later is seen at the next Acquire.
	time.Sleep(10 * time.Millisecond) // a distinct mtime even on coarse clocks
	f, err := os.OpenFile(p.users.path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("bob:x:1001:1001::/:/bin/sh\n")
	f.Close()
	for range 3 {
		if uid, err := p.Acquire(""); err == nil && uid == 1001 {
			t.Fatal("handed out 1001 after it was added to passwd")
		}
	}
}

func TestSystemdHeld(t *testing.T) {
	p := testPool(t, 50, 51, "", "")
	if err := os.MkdirAll(p.systemdDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.systemdDir, "50"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if uid, err := p.Acquire(""); err != nil || uid != 51 {
		t.Errorf("Acquire = %d, %v; want 51", uid, err)
	}
}

func TestTwoPoolsShareDir(t *testing.T) {
	// flock locks belong to an open file description, so a second Pool
	// in this process stands for a second acceptd.
	a := testPool(t, 200, 209, "", "")
	b, err := New(200, 209, Options{Dir: a.dir, Passwd: a.users.path, Group: a.groups.path, SystemdDir: a.systemdDir})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]string{}
	for i := range 10 {
		p, name := a, "a"
		if i%2 == 1 {
			p, name = b, "b"
		}
		uid, err := p.Acquire(name)
		if err != nil {
			t.Fatal(err)
		}
		if seen[uid] != "" {
			t.Fatalf("uid %d held by %s handed out to %s", uid, seen[uid], name)
		}
		seen[uid] = name
	}
	if _, err := b.Acquire(""); !errors.Is(err, ErrExhausted) {
		t.Errorf("b.Acquire: %v; want ErrExhausted", err)
	}
	for uid, name := range seen {
		if name == "b" {
			b.Release(uid)
		}
	}
}

func TestOtherProcessAndCrash(t *testing.T) {
	// flock(1) holds the lock file of 301 from another process, as a
	// second acceptd would; killing it frees the UID.
	flockBin, err := exec.LookPath("flock")
	if err != nil {
		t.Skip("no flock(1)")
	}
	p := testPool(t, 301, 302, "", "")
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(flockBin, "-x", filepath.Join(p.dir, "301"), "-c", "echo locked; exec sleep 60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	defer cmd.Wait()
	defer kill()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("flock said %q", line)
	}
	if uid, err := p.Acquire(""); err != nil || uid != 302 {
		t.Fatalf("Acquire = %d, %v; want 302 (301 is held elsewhere)", uid, err)
	}
	if _, err := p.Acquire(""); !errors.Is(err, ErrExhausted) {
		t.Fatalf("second Acquire: %v; want ErrExhausted", err)
	}
	// flock and the sleep it started both hold the lock's descriptor.
	kill()
	cmd.Wait()
	// sleep, reparented, may take a moment more to exit.
	var uid uint32
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if uid, err = p.Acquire(""); err == nil {
			break
		}
	}
	if err != nil || uid != 301 {
		t.Fatalf("after the holder died: %d, %v; want 301", uid, err)
	}
}

func TestUnlinkedLockIsNotHeld(t *testing.T) {
	// A holder that opened the file before another holder's release
	// (which unlinks it) must not count the stale file as a lock.
	p := testPool(t, 400, 400, "", "")
	if _, err := p.Acquire(""); err != nil {
		t.Fatal(err)
	}
	stale, err := os.Open(filepath.Join(p.dir, "400"))
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	p.Release(400)
	q, _ := New(400, 400, Options{Dir: p.dir, Passwd: p.users.path, Group: p.groups.path, SystemdDir: p.systemdDir})
	if _, err := q.Acquire(""); err != nil {
		t.Fatal(err)
	}
	defer q.Release(400)
	// What p would do with the descriptor it opened before the unlink.
	if fd, err := p.lock(400, ""); err != nil || fd != -1 {
		t.Errorf("lock on a held uid: fd %d, %v", fd, err)
	}
}

func TestSetRange(t *testing.T) {
	p := testPool(t, 500, 501, "", "")
	a, _ := p.Acquire("")
	if err := p.SetRange(600, 600); err != nil {
		t.Fatal(err)
	}
	if uid, err := p.Acquire(""); err != nil || uid != 600 {
		t.Errorf("Acquire = %d, %v; want 600", uid, err)
	}
	if !p.Holds(a) {
		t.Errorf("uid %d from the old range no longer held", a)
	}
	p.Release(a)
	p.Release(600)
	if err := p.SetRange(5, 4); err == nil {
		t.Error("bad range accepted")
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	p, err := New(61184, 65519, Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		uid, err := p.Acquire("bench")
		if err != nil {
			b.Fatal(err)
		}
		p.Release(uid)
	}
}
