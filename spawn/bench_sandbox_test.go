package spawn_test

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/acceptd/acceptd/spawn"
	"github.com/acceptd/acceptd/spawn/cgroup"
	"github.com/acceptd/acceptd/spawn/uidpool"
)

// BenchmarkSandbox measures Start+Wait of /bin/true, 8 at a time, on the
// plain path and on each sandboxed path, including what the server does
// per instance around the spawn (a UID from the pool and back, a cgroup
// made and removed). Compare the spawns/s of each to "plain".
func BenchmarkSandbox(b *testing.B) {
	null := devNull(b)
	fd := int(null.Fd())
	base := func() *spawn.Spec {
		return &spawn.Spec{Path: "/bin/true", Env: benchEnv, Files: []int{fd, fd, fd}, Umask: -1}
	}
	root := os.Geteuid() == 0
	var cg *cgroup.Manager
	if m, err := cgroup.New(mountOrSkipB(), "acceptd-bench-"+strconv.Itoa(os.Getpid()), os.Getpid()); err == nil {
		cg = m
		b.Cleanup(func() { m.Close() })
	}
	pool, err := uidpool.New(61184, 65519, uidpool.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	type way struct {
		name string
		need bool // runnable here
		run  func(n int) error
	}
	var seq atomic.Int64
	ways := []way{
		{"plain", true, func(int) error { return startWait(base()) }},
		{"helper-nonewprivs", true, func(int) error {
			s := base()
			s.NoNewPrivs = true
			return startWait(s)
		}},
		{"dynamic-user", root, func(int) error {
			s := base()
			uid, err := pool.Acquire("bench")
			if err != nil {
				return err
			}
			defer pool.Release(uid)
			s.Credential = &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}
			s.NoNewPrivs = true
			return startWait(s)
		}},
		{"plain-cgroup", cg != nil, func(n int) error {
			s := base()
			g, err := cg.Create("b"+strconv.Itoa(n), cgroup.Limits{})
			if err != nil {
				return err
			}
			defer g.Remove()
			s.UseCgroupFD, s.CgroupFD = true, g.FD()
			return startWait(s)
		}},
		{"private-network", root, func(int) error {
			s := base()
			s.PrivateNetwork = true
			return startWait(s)
		}},
		{"private-tmp", root, func(int) error {
			s := base()
			s.PrivateTmp = true
			return startWait(s)
		}},
	}
	for _, w := range ways {
		b.Run(w.name, func(b *testing.B) {
			if !w.need {
				b.Skip("needs root or a writable cgroup2 hierarchy")
			}
			concurrently(b, 8, func() error {
				return w.run(int(seq.Add(1))) // a distinct cgroup name per spawn
			})
		})
	}
}

func startWait(s *spawn.Spec) error {
	p, err := spawn.Start(s)
	if err != nil {
		return err
	}
	_, err = p.Wait()
	return err
}

// mountOrSkipB is the cgroup2 mount, or "" (then cgroup.New fails and
// the cgroup case is skipped alone).
func mountOrSkipB() string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for l := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(l); strings.Contains(l, " - cgroup2 ") && f[3] == "/" {
			return f[4]
		}
	}
	return ""
}
