package testutil

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	line := "4711 (a (weird) name) S 1 4711 4711 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 100 0 0\n"
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{Pid: 4711, PPid: 1, Pgid: 4711, State: 'S', CPUTicks: 10}
	if st != want {
		t.Fatalf("parseStat = %+v, want %+v", st, want)
	}
}

func TestSelf(t *testing.T) {
	pid := os.Getpid()
	st, err := ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pid != pid || st.PPid != os.Getppid() {
		t.Fatalf("ReadStat(self) = %+v, want pid %d ppid %d", st, pid, os.Getppid())
	}
	fds, err := FDs(pid)
	if err != nil || len(fds) < 3 {
		t.Fatalf("FDs(self) = %v, %v; want at least 0, 1, 2", fds, err)
	}
	if n, err := Threads(pid); err != nil || n < 1 {
		t.Fatalf("Threads(self) = %d, %v", n, err)
	}
	if !Alive(pid) {
		t.Fatal("Alive(self) = false")
	}
}

func TestShortDirAndPoll(t *testing.T) {
	dir := ShortDir(t)
	if len(dir) > 40 {
		t.Errorf("ShortDir = %q, longer than 40 bytes", dir)
	}
	n := 0
	if !Poll(time.Second, func() bool { n++; return n == 3 }) {
		t.Fatal("Poll gave up on a condition that becomes true")
	}
	if Poll(20*time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll returned true for a condition that never is")
	}
}
