package integration

import (
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/internal/testutil"
)

// TestManyConnectionsInARow: 2,000 connections one after the other,
// each through a fresh child: all served, no zombie left, and acceptd's
// open fds back to their count before; threads too, give or take the few
// that Go's runtime may add under load and never gives back.
func TestManyConnectionsInARow(t *testing.T) {
	const n = 2000
	echo, err := exec.LookPath("echo")
	if err != nil {
		t.Skip("no echo program")
	}
	d := startDaemon(t, `
service "many" {
  listen = ["{{DIR}}/many.sock"]
  exec {
    command = ["`+echo+`", "hi"]
  }
}
`, daemonOpts{})
	sock := filepath.Join(d.dir, "many.sock")
	for i := 0; i < 20; i++ {
		request(t, sock, "")
	}
	settle := func() {
		testutil.WaitFor(t, 30*time.Second, "every instance to end", func() bool { return d.service("many").Connected == 0 })
	}
	settle()
	fds0, err := testutil.FDs(d.pid())
	if err != nil {
		t.Fatal(err)
	}
	threads0, _ := testutil.Threads(d.pid())

	deadline := time.Now().Add(3 * time.Minute)
	for i := 0; i < n; i++ {
		if got := request(t, sock, ""); got != "hi\n" {
			t.Fatalf("connection %d: got %q", i, got)
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d connections in 3 minutes", i)
		}
	}
	settle()
	if s := d.service("many"); s.Accepted != n+20 || s.Refused != 0 {
		t.Errorf("status: accepted %d refused %d, want %d and 0", s.Accepted, s.Refused, n+20)
	}
	var zombies []testutil.Stat
	if !testutil.Poll(10*time.Second, func() bool {
		zombies = testutil.Children(d.pid())
		return len(zombies) == 0
	}) {
		t.Errorf("acceptd still has children (zombies?) after every connection ended: %+v", zombies)
	}
	// acceptd keeps a pool of per-instance cgroup directories open for
	// reuse; the pool may grow a little with instances that overlap
	// while one is being cleaned up, but not with the connection count.
	// Every other fd must be back exactly.
	split := func(fds map[int]string) (other, cgroups int) {
		for _, target := range fds {
			if strings.HasPrefix(target, "/sys/fs/cgroup/") && !strings.HasPrefix(target, "/sys/fs/cgroup/cpu/") {
				cgroups++
			} else {
				other++
			}
		}
		return other, cgroups
	}
	other0, cg0 := split(fds0)
	var fds map[int]string
	if !testutil.Poll(10*time.Second, func() bool {
		fds, _ = testutil.FDs(d.pid())
		other, cg := split(fds)
		return other == other0 && cg <= cg0+8
	}) {
		t.Errorf("acceptd has %d fds after %d connections, %d before:\nbefore %v\nafter  %v", len(fds), n, len(fds0), fds0, fds)
	}
	// Go's runtime keeps the threads it once needed (a fork under load
	// blocks one) and never ends them, so a few more than before is
	// normal; a leak would grow with the number of connections.
	threads, _ := testutil.Threads(d.pid())
	if threads > threads0+10 {
		t.Errorf("acceptd has %d threads after %d connections, %d before", threads, n, threads0)
	}
	t.Logf("fds %d -> %d, threads %d -> %d", len(fds0), len(fds), threads0, threads)
	d.stop(sock)
}

// TestOutOfFileDescriptors lowers acceptd's RLIMIT_NOFILE while it runs
// (as `prlimit --pid PID --nofile=N:N` does) to exactly the fds it has
// open (prlimit counts fd numbers, so: the lowest free one): accept then
// fails with EMFILE. acceptd must back off instead of
// spinning, and serve the waiting clients once connections end and free
// their fds.
func TestOutOfFileDescriptors(t *testing.T) {
	testutil.RequireRoot(t) // raising the hard limit back needs CAP_SYS_RESOURCE
	d := startDaemon(t, `
service "fdhungry" {
  listen = ["{{DIR}}/fd.sock"]
  exec {
    `+prog("greet")+`
  }
}
`, daemonOpts{})
	sock := filepath.Join(d.dir, "fd.sock")
	fdCount := func() int {
		fds, err := testutil.FDs(d.pid())
		if err != nil {
			t.Fatal(err)
		}
		return len(fds)
	}
	before := fdCount()
	const held = 10
	var open []net.Conn
	for i := 0; i < held; i++ {
		c := dial(t, sock)
		if !greeted(t, c) {
			t.Fatalf("held connection %d not served", i)
		}
		open = append(open, c)
	}
	t.Logf("acceptd holds %d fds per running instance", (fdCount()-before)/held)

	var old unix.Rlimit
	if err := unix.Prlimit(d.pid(), unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	restore := func() { unix.Prlimit(d.pid(), unix.RLIMIT_NOFILE, &old, nil) }
	defer restore()
	// The limit is on fd numbers, not on how many are open: set it to
	// the lowest free number, so that the next fd acceptd asks for is
	// refused with EMFILE.
	fds, err := testutil.FDs(d.pid())
	if err != nil {
		t.Fatal(err)
	}
	lim := uint64(0)
	for fds[int(lim)] != "" {
		lim++
	}
	if err := unix.Prlimit(d.pid(), unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: lim, Max: old.Max}, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}

	var waiting []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.DialTimeout("unix", sock, 10*time.Second)
		if err != nil {
			t.Fatalf("dial while out of fds: %v (the backlog should take it)", err)
		}
		defer c.Close()
		waiting = append(waiting, c)
	}
	d.waitLogs("accept failed; backing off", 1)

	// Backing off costs almost no CPU; a loop retrying accept at once
	// would burn a whole core (100 ticks a second).
	st0, err := testutil.ReadStat(d.pid())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	st1, err := testutil.ReadStat(d.pid())
	if err != nil {
		t.Fatal(err)
	}
	if used := st1.CPUTicks - st0.CPUTicks; used > 40 {
		t.Errorf("acceptd used %d CPU ticks in 2s while out of fds: is the accept loop spinning?", used)
	}
	t.Logf("%d CPU ticks in 2s while out of fds; %d backoff log lines", st1.CPUTicks-st0.CPUTicks, len(d.logs("accept failed; backing off")))

	// End the running instances and give the fds back: the numbers the
	// instances held lie above the lowest free one, so closing them
	// alone does not make room under the lowered limit; raising it again
	// is what an operator does, and to acceptd it is the same as fds
	// coming free.
	closeAll(open)
	restore()
	for i, c := range waiting {
		if !greeted(t, c) {
			t.Errorf("waiting client %d not served after fds were freed", i)
		}
		c.Close()
	}
	if s := d.service("fdhungry"); s.Refused != 0 || s.Accepted != held+2 {
		t.Errorf("status: accepted %d refused %d; want %d and 0: clients in the backlog wait, they are not dropped", s.Accepted, s.Refused, held+2)
	}
	d.stop(sock)
}
