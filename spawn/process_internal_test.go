package spawn

import (
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWithoutPidfd runs Wait and Stop's escalation the way they run on a
// kernel without CLONE_PIDFD: a thread blocked in waitid and a timer.
func TestWithoutPidfd(t *testing.T) {
	p, err := Start(&Spec{
		Path:        "/bin/sh",
		Args:        []string{"sh", "-c", `trap "" TERM; echo ready; sleep 30`},
		Umask:       -1,
		StopTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(p.pidfd)
	p.pidfd = -1
	time.Sleep(50 * time.Millisecond) // let sh set its trap
	p.Stop()
	res, err := p.Wait()
	if err != nil || res.Signal != syscall.SIGKILL {
		t.Errorf("Wait() = %v, %v; want signal SIGKILL", res, err)
	}
}

func TestHelperSettingsRoundTrip(t *testing.T) {
	in := helperSettings{
		umask: 0o27, noNewPrivs: true, listenPID: true, closeStd: 5, errFD: 4,
		limits:     []Rlimit{{Resource: 7, Cur: 1, Max: ^uint64(0)}, {Resource: 4, Cur: 0, Max: 0}},
		cred:       &syscall.Credential{Uid: 1000, Gid: 100, Groups: []uint32{4, 27}},
		privateTmp: true, loUp: true, chroot: "/srv/a;b=c",
	}
	out, err := decodeSettings(string(in.encode(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if out.umask != in.umask || !out.noNewPrivs || !out.listenPID || out.closeStd != 5 || out.errFD != 4 ||
		len(out.limits) != 2 || out.limits[0] != in.limits[0] || out.limits[1] != in.limits[1] ||
		out.cred.Uid != 1000 || out.cred.Gid != 100 || len(out.cred.Groups) != 2 || out.cred.Groups[1] != 27 ||
		!out.privateTmp || !out.loUp || out.chroot != in.chroot {
		t.Errorf("decode(encode(%+v)) = %+v", in, out)
	}
	empty, err := decodeSettings(string((&helperSettings{umask: -1, errFD: 3, cred: &syscall.Credential{Uid: 1}}).encode(nil)))
	if err != nil || empty.umask != -1 || empty.cred == nil || len(empty.cred.Groups) != 0 || empty.cred.Groups == nil {
		t.Errorf("empty groups: %+v, %v", empty, err)
	}
	if _, err := decodeSettings("e=3;x=1"); err == nil {
		t.Error("unknown setting accepted")
	}
}

// TestPidfdIsTheChilds: the plain path hands back the pidfd clone3 made
// (the kernel writes it into memory the child shares), and it names the
// child: it becomes readable when the child exits.
func TestPidfdIsTheChilds(t *testing.T) {
	p, err := Start(&Spec{Path: "/bin/sh", Args: []string{"sh", "-c", "exit 7"}, Umask: -1})
	if err != nil {
		t.Fatal(err)
	}
	if p.pidfd < 0 {
		t.Fatal("no pidfd")
	}
	fds := []unix.PollFd{{Fd: int32(p.pidfd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 5000); n != 1 || err != nil {
		t.Errorf("pidfd %d not readable after the child's exit: %d, %v", p.pidfd, n, err)
	}
	res, err := p.Wait()
	if err != nil || res.ExitCode != 7 {
		t.Errorf("Wait() = %v, %v; want exit status 7", res, err)
	}
}
