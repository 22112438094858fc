package spawn_test

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acceptd/acceptd/spawn"
)

// tinyStatic builds the smallest program there is: a static binary whose
// _start calls exit(0). It measures the spawn itself, not ld.so and libc.
func tinyStatic(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	src := filepath.Join(dir, "tiny.c")
	const prog = "void _start(void){__asm__ volatile(\"mov $60,%eax\\nxor %edi,%edi\\nsyscall\");}\n"
	if err := os.WriteFile(src, []byte(prog), 0o644); err != nil {
		b.Fatal(err)
	}
	exe := filepath.Join(dir, "tiny")
	if out, err := exec.Command("gcc", "-static", "-nostdlib", "-O2", "-o", exe, src).CombinedOutput(); err != nil {
		b.Skipf("cannot build the tiny static program: %v\n%s", err, out)
	}
	return exe
}

// devNull opens /dev/null for the children's stdin, stdout and stderr,
// as the server passes a socket.
func devNull(b *testing.B) *os.File {
	b.Helper()
	f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// benchEnv is about what a per-connection program gets.
var benchEnv = spawn.ConnEnv(nil, &spawn.Conn{
	Proto: "TCP", RemoteIP: netip.MustParseAddr("127.0.0.1"), RemotePort: 50312,
	LocalIP: netip.MustParseAddr("127.0.0.1"), LocalPort: 31337,
}, "hello", "hello@8-127.0.0.1:31337-127.0.0.1:50312")

// concurrently runs b.N calls of f spread over n goroutines.
func concurrently(b *testing.B, n int, f func() error) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	per, rest := b.N/n, b.N%n
	self0, kids0 := cpuTime(syscall.RUSAGE_SELF), cpuTime(syscall.RUSAGE_CHILDREN)
	b.ResetTimer()
	for i := range n {
		count := per
		if i < rest {
			count++
		}
		wg.Go(func() {
			for range count {
				if err := f(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	// Wall time depends on what else the (shared) machine runs; the CPU
	// time spent per spawn, in acceptd and in the children, much less.
	self, kids := cpuTime(syscall.RUSAGE_SELF)-self0, cpuTime(syscall.RUSAGE_CHILDREN)-kids0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "spawns/s")
	b.ReportMetric(float64(self.Microseconds())/float64(b.N), "parent-cpu-µs/op")
	b.ReportMetric(float64(kids.Microseconds())/float64(b.N), "child-cpu-µs/op")
}

func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The three ways to start and reap one child that BenchmarkSpawn compares.
func spawnOnce(path string, fd int) func() error {
	spec := &spawn.Spec{Path: path, Args: []string{path}, Env: benchEnv, Files: []int{fd, fd, fd}, Umask: -1}
	return func() error {
		p, err := spawn.Start(spec)
		if err != nil {
			return err
		}
		_, err = p.Wait()
		return err
	}
}

func osExecOnce(path string, f *os.File) func() error {
	return func() error {
		cmd := exec.Command(path)
		cmd.Env = benchEnv
		cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, f
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return err
		}
		return cmd.Wait()
	}
}

// forkExecWait4Once is the floor of the other reaping design: ForkExec
// and a goroutine blocked (holding a thread) in wait4 for its pid.
func forkExecWait4Once(path string, fd int) func() error {
	return func() error {
		pid, err := syscall.ForkExec(path, []string{path}, &syscall.ProcAttr{
			Env:   benchEnv,
			Files: []uintptr{uintptr(fd), uintptr(fd), uintptr(fd)},
			Sys:   &syscall.SysProcAttr{Setpgid: true},
		})
		if err != nil {
			return err
		}
		var ws syscall.WaitStatus
		var ru syscall.Rusage
		_, err = syscall.Wait4(pid, &ws, 0, &ru)
		return err
	}
}

// BenchmarkSpawn measures Start+Wait on the plain path against os/exec's
// Cmd.Start+Wait and against bare ForkExec+wait4, for /bin/true and for a
// tiny static program, with 1, 8 and 64 goroutines spawning at once.
func BenchmarkSpawn(b *testing.B) {
	null := devNull(b)
	fd := int(null.Fd())
	progs := []struct{ name, path string }{{"true", "/bin/true"}, {"static", tinyStatic(b)}}
	for _, prog := range progs {
		ways := []struct {
			name string
			once func() error
		}{
			{"spawn", spawnOnce(prog.path, fd)},
			{"osexec", osExecOnce(prog.path, null)},
			{"forkexec-wait4", forkExecWait4Once(prog.path, fd)},
		}
		for _, conc := range []int{1, 8, 64} {
			for _, way := range ways {
				b.Run(prog.name+"/c"+strconv.Itoa(conc)+"/"+way.name, func(b *testing.B) {
					concurrently(b, conc, way.once)
				})
			}
		}
	}
}

// BenchmarkSpawnHelper measures the helper path (a second exec of the test
// binary) for /bin/true.
func BenchmarkSpawnHelper(b *testing.B) {
	null := devNull(b)
	fd := int(null.Fd())
	for _, conc := range []int{1, 8} {
		b.Run("c"+strconv.Itoa(conc), func(b *testing.B) {
			spec := &spawn.Spec{Path: "/bin/true", Env: benchEnv, Files: []int{fd, fd, fd}, Umask: -1, NoNewPrivs: true}
			concurrently(b, conc, func() error {
				p, err := spawn.Start(spec)
				if err != nil {
					return err
				}
				_, err = p.Wait()
				return err
			})
		})
	}
}

func BenchmarkConnEnv(b *testing.B) {
	conns := []struct {
		name string
		c    spawn.Conn
	}{
		{"tcp4", spawn.Conn{Proto: "TCP", RemoteIP: netip.MustParseAddr("192.0.2.10"), RemotePort: 50312,
			LocalIP: netip.MustParseAddr("192.0.2.1"), LocalPort: 31337}},
		{"tcp6", spawn.Conn{Proto: "TCP", RemoteIP: netip.MustParseAddr("2001:db8::1234:5678"), RemotePort: 50312,
			LocalIP: netip.MustParseAddr("2001:db8::1"), LocalPort: 31337}},
		{"unix", spawn.Conn{Proto: "UNIX", RemotePath: "/run/client.sock", PeerPID: 4711, PeerUID: 1000, PeerGID: 1000}},
	}
	for _, c := range conns {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]string, 0, 16)
			for b.Loop() {
				dst = spawn.ConnEnv(dst[:0], &c.c, "hello", "hello@8-192.0.2.1:31337-192.0.2.10:50312")
			}
		})
	}
	b.Run("merge", func(b *testing.B) {
		b.ReportAllocs()
		dst := make([]string, 0, 16)
		for b.Loop() {
			dst = spawn.ConnEnv(dst[:0], &conns[0].c, "hello", "hello@8")
			dst = append(dst, "PATH=/opt/bin", "GREETING=hi")
			dst = spawn.MergeEnv(dst)
		}
	})
}
