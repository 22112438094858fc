package server

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestUIDInUse(t *testing.T) {
	if !uidInUse(uint32(os.Getuid())) {
		t.Error("our own uid not found in use")
	}
	if uidInUse(4123456789) {
		t.Error("an unused uid found in use")
	}
}

// TestSandboxDynamicUserWithoutCgroup: without a cgroup, a grandchild
// that left the process group and the session outlives the instance, and
// its UID stays held until it is gone. The program prints the
// grandchild's pid once it has its own session: until then the group
// kill at the instance's end would still reach it.
func TestSandboxDynamicUserWithoutCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	cfg := parse(t, `
dynamic_users { range = "64000-64001" }
service "esc" {
  listen = ["127.0.0.1:0"]
  exec {
    command = ["/bin/sh", "-c", "setsid sleep 30 </dev/null >/dev/null 2>&1 & p=$!; while [ \"$(cut -d' ' -f6 /proc/$p/stat)\" != $p ]; do :; done; echo $p"]
    dynamic_user = true
    stderr = "null"
  }
}
`)
	lockDir := t.TempDir()
	srv, _ := startWith(t, cfg, Options{DynamicUIDDir: lockDir, NoCgroups: true})
	addr := addrOf(t, srv, "esc")
	pidOf := func() int {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		pid, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil {
			t.Fatalf("program said %q", line)
		}
		return pid
	}
	held := func() []string {
		ents, _ := os.ReadDir(lockDir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	gc := pidOf()
	defer syscall.Kill(gc, syscall.SIGKILL)
	until := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("timed out waiting for %s; held %v", what, held())
			}
		}
	}
	until("instance end", func() bool { return srv.Status().Services[0].Connected == 0 })
	// The grandchild lives on with the UID, which stays held.
	time.Sleep(200 * time.Millisecond)
	if h := held(); len(h) != 1 {
		t.Fatalf("held %v; want the grandchild's UID", h)
	}
	first := held()[0]
	if b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(gc), "status")); !strings.Contains(string(b), "\nUid:\t"+first+"\t") {
		t.Fatalf("grandchild %d does not run as %s", gc, first)
	}
	// The next instance gets the other UID.
	gc2 := pidOf()
	defer syscall.Kill(gc2, syscall.SIGKILL)
	until("second instance end", func() bool { return srv.Status().Services[0].Connected == 0 })
	if h := held(); len(h) != 2 {
		t.Fatalf("held %v; want both", h)
	}
	syscall.Kill(gc, syscall.SIGKILL)
	syscall.Kill(gc2, syscall.SIGKILL)
	until("UIDs released", func() bool { return len(held()) == 0 })
}

// TestSandboxCgroupAfterKill: an instance whose setsid grandchild is left
// when it ends has its cgroup killed; the instances after it must not die
// with it (a killed cgroup kills newcomers on Linux 6.14 and later, so it
// must never go back to the pool).
func TestSandboxCgroupAfterKill(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	cfg := parse(t, `
service "esc" {
  listen = ["127.0.0.1:0"]
  exec {
    command = ["/bin/sh", "-c", "if [ \"$(cat)\" = leave ]; then setsid sleep 30 </dev/null >/dev/null 2>&1 & p=$!; while [ \"$(cut -d' ' -f6 /proc/$p/stat)\" != $p ]; do :; done; fi; echo served"]
    stderr = "null"
  }
}
`)
	srv, _ := start(t, cfg)
	if srv.sandbox.cg == nil {
		t.Skip("no writable cgroup2 hierarchy")
	}
	addr := addrOf(t, srv, "esc")
	ask := func(what string) string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte(what))
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}
	for i := range 3 {
		if got := ask("leave"); got != "served\n" {
			t.Fatalf("instance %d leaving a grandchild said %q", i, got)
		}
		for end := time.Now().Add(10 * time.Second); srv.Status().Services[0].Connected != 0 || srv.sandbox.pendingNow() != 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatal("instance and its cgroup not ended")
			}
		}
		if got := ask("stay"); got != "served\n" {
			t.Fatalf("the instance after a killed cgroup said %q", got)
		}
	}
}
