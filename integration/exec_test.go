package integration

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acceptd/acceptd/internal/testutil"
)

// TestUserGroup: a child runs as the configured user with that user's
// groups and nothing of root's; names and numbers both work.
func TestUserGroup(t *testing.T) {
	testutil.RequireRoot(t)
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	d := startDaemon(t, `
service "byname" {
  listen = ["127.0.0.1:{{PORT0}}"]
  exec {
    `+prog("fds")+`
    user = "nobody"
  }
}
service "withgroup" {
  listen = ["127.0.0.1:{{PORT1}}"]
  exec {
    `+prog("fds")+`
    user  = "nobody"
    group = "0"
  }
}
service "bynumber" {
  listen = ["127.0.0.1:{{PORT2}}"]
  exec {
    `+prog("fds")+`
    user  = "12345"
    group = "12346"
  }
}
`, daemonOpts{ports: 3})
	ids := func(id string) string { return strings.Repeat(id+"\t", 3) + id }
	userGroups, err := u.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	checkGroups := func(name, got string) {
		t.Helper()
		// The user's supplementary groups (its primary group may or
		// may not be listed, as initgroups does), and never root's.
		for _, g := range strings.Fields(got) {
			if !slices.Contains(userGroups, g) {
				t.Errorf("%s: child has group %s, not one of nobody's %v", name, g, userGroups)
			}
		}
		for _, g := range userGroups {
			if g != u.Gid && !slices.Contains(strings.Fields(got), g) {
				t.Errorf("%s: child lacks nobody's supplementary group %s (has %q)", name, g, got)
			}
		}
	}

	r := fdsOf(t, d.addr(0))
	if r.Uid != ids(u.Uid) || r.Gid != ids(u.Gid) {
		t.Errorf("user = \"nobody\": Uid %q Gid %q, want %s and %s everywhere", r.Uid, r.Gid, u.Uid, u.Gid)
	}
	checkGroups("byname", r.Groups)

	r = fdsOf(t, d.addr(1))
	if r.Uid != ids(u.Uid) || r.Gid != ids("0") {
		t.Errorf("user nobody, group 0: Uid %q Gid %q", r.Uid, r.Gid)
	}
	checkGroups("withgroup", r.Groups)

	r = fdsOf(t, d.addr(2))
	if r.Uid != ids("12345") || r.Gid != ids("12346") || r.Groups != "" {
		t.Errorf("user 12345, group 12346: Uid %q Gid %q Groups %q, want no supplementary groups", r.Uid, r.Gid, r.Groups)
	}
	d.stop()
}

// TestStopTimeoutKillsGroup: on SIGTERM acceptd lets instances run for
// stop_timeout, then stops their process groups; a child that ignores
// SIGTERM is killed with its grandchild, and acceptd still exits 0.
func TestStopTimeoutKillsGroup(t *testing.T) {
	d := startDaemon(t, `
service "stubborn" {
  listen = ["{{DIR}}/stubborn.sock"]
  exec {
    `+prog("ignore-term")+`
    stop_timeout = "500ms"
  }
}
`, daemonOpts{})
	sock := d.dir + "/stubborn.sock"
	var pids []int
	for i := 0; i < 2; i++ {
		c := dial(t, sock)
		var pid, gc int
		if _, err := fmt.Sscanf(readLine(t, c), "pid %d grandchild %d", &pid, &gc); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid, gc)
		d.pgids[pid] = true
	}
	start := time.Now()
	d.stop(sock)
	took := time.Since(start)
	t.Logf("acceptd stopped %s after SIGTERM", took.Round(time.Millisecond))
	// The grace comes first: the instances ignore SIGTERM, so nothing
	// ends them before stop_timeout has passed.
	if took < 500*time.Millisecond {
		t.Errorf("acceptd stopped %s after SIGTERM, before stop_timeout (500ms)", took)
	}
	for _, p := range pids {
		if testutil.Alive(p) {
			t.Errorf("process %d still alive after acceptd stopped", p)
		}
	}
}

// TestRuntimeMax: an instance that runs longer than runtime_max gets
// SIGTERM, and SIGKILL for its whole group after stop_timeout; acceptd
// carries on serving.
func TestRuntimeMax(t *testing.T) {
	d := startDaemon(t, `
service "short" {
  listen = ["{{DIR}}/short.sock"]
  exec {
    `+prog("hang")+`
    runtime_max = "300ms"
  }
}
service "stubborn" {
  listen = ["{{DIR}}/stubborn.sock"]
  exec {
    `+prog("ignore-term")+`
    runtime_max  = "300ms"
    stop_timeout = "300ms"
  }
}
`, daemonOpts{})
	c := dial(t, d.dir+"/short.sock")
	if l := readLine(t, c); !strings.HasPrefix(l, "ready") {
		t.Fatalf("hang said %q", l)
	}
	if rest := readAll(t, c); rest != "" {
		t.Errorf("after ready: %q", rest)
	}
	c = dial(t, d.dir+"/stubborn.sock")
	var pid, gc int
	if _, err := fmt.Sscanf(readLine(t, c), "pid %d grandchild %d", &pid, &gc); err != nil {
		t.Fatal(err)
	}
	readAll(t, c) // EOF: the child and the grandchild, which hold the socket, are gone
	testutil.WaitFor(t, 10*time.Second, "the grandchild to be killed", func() bool { return !testutil.Alive(gc) })
	ended := d.waitLogs("connection ended", 2)
	for _, e := range ended {
		if !strings.Contains(e.str("error"), "runtime_max") {
			t.Errorf("log line of an instance stopped by runtime_max: %v", e)
		}
	}
	if got := request(t, d.dir+"/short.sock", ""); !strings.HasPrefix(got, "ready") {
		t.Errorf("after runtime_max stops: got %q", got)
	}
	d.stop(d.dir+"/short.sock", d.dir+"/stubborn.sock")
}

// TestExitStatusAndStderr: exits, crashes and programs that never read
// are logged once each with their status; stderr lines are logged with
// the instance; nothing of it disturbs the next connection.
func TestExitStatusAndStderr(t *testing.T) {
	d := startDaemon(t, `
service "crash" {
  listen = ["{{DIR}}/crash.sock"]
  exec {
    `+prog("crash")+`
  }
}
service "fail" {
  listen = ["{{DIR}}/fail.sock"]
  exec {
    `+prog("fail")+`
  }
}
service "ignored" {
  listen = ["{{DIR}}/ignored.sock"]
  exec {
    `+prog("fail")+`
    ignore_exit_status = true
  }
}
service "noread" {
  listen = ["127.0.0.1:{{PORT}}"]
  exec {
    `+prog("exit-without-reading")+`
  }
}
service "stderr" {
  listen = ["{{DIR}}/stderr.sock"]
  exec {
    `+prog("stderr")+`
  }
}
`, daemonOpts{})
	if got := request(t, d.dir+"/crash.sock", ""); got != "crashing\n" {
		t.Errorf("crash: %q", got)
	}
	if got := request(t, d.dir+"/fail.sock", ""); got != "failing\n" {
		t.Errorf("fail: %q", got)
	}
	if got := request(t, d.dir+"/ignored.sock", ""); got != "failing\n" {
		t.Errorf("ignored: %q", got)
	}
	// Writing a lot to a program that exits without reading: the
	// client sees its write fail or the connection close, nothing more.
	for i := 0; i < 5; i++ {
		c := dial(t, d.addr(0))
		c.SetDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 64<<10)
		for j := 0; j < 64; j++ {
			if _, err := c.Write(buf); err != nil {
				break
			}
		}
		c.Close()
	}
	if got := request(t, d.dir+"/stderr.sock", ""); got != "done\n" {
		t.Errorf("stderr: %q", got)
	}
	d.waitLogs("connection ended", 9)
	want := map[string]struct{ level, exit string }{
		"crash":   {"warn", "signal SIGKILL"},
		"fail":    {"warn", "exit status 3"},
		"ignored": {"info", "exit status 3"},
		"noread":  {"info", "exit status 0"},
		"stderr":  {"info", "exit status 0"},
	}
	for _, e := range d.logs("connection ended") {
		w := want[e.str("service")]
		if e.str("level") != w.level || e.str("exit") != w.exit {
			t.Errorf("%s: logged at %s with exit %q, want %s and %q: %v", e.str("service"), e.str("level"), e.str("exit"), w.level, w.exit, e)
		}
	}
	lines := d.logs("a line on stderr")
	if len(lines) != 1 || !strings.HasPrefix(lines[0].str("instance"), "stderr@0-") || lines[0]["pid"] == nil {
		t.Errorf("stderr = \"log\": want one log line with the instance and pid, got %v", lines)
	}
	if s := d.service("noread"); s.Accepted != 5 || s.Refused != 0 {
		t.Errorf("noread: accepted %d refused %d, want 5 and 0", s.Accepted, s.Refused)
	}
	d.stop()
}

// TestWorkingDirectory: the child starts in working_directory.
func TestWorkingDirectory(t *testing.T) {
	d := startDaemon(t, `
service "wd" {
  listen = ["{{DIR}}/wd.sock"]
  exec {
    `+prog("fds")+`
    working_directory = "{{DIR}}"
  }
}
`, daemonOpts{})
	if r := fdsOf(t, d.dir+"/wd.sock"); r.Cwd != d.dir {
		t.Errorf("working_directory = %q: child's cwd is %q", d.dir, r.Cwd)
	}
	d.stop()
}

// TestSIGINT stops like SIGTERM.
func TestSIGINT(t *testing.T) {
	d := startDaemon(t, `
service "i" {
  listen = ["{{DIR}}/i.sock"]
  exec {
    `+prog("line")+`
  }
}
`, daemonOpts{})
	request(t, d.dir+"/i.sock", "")
	d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("acceptd did not stop on SIGINT")
	}
	if d.exitErr != nil {
		t.Errorf("exit after SIGINT: %v", d.exitErr)
	}
	if _, err := os.Lstat(d.dir + "/i.sock"); err == nil {
		t.Error("socket file left after SIGINT")
	}
	if _, err := net.Dial("unix", d.dir+"/i.sock"); err == nil {
		t.Error("still accepting after SIGINT")
	}
}
