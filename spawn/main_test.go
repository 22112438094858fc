package spawn_test

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acceptd/acceptd/spawn"
)

// progEnv names the test program the test binary plays when it is a child
// (the os/exec helper-command idea).
const progEnv = "ACCEPTD_SPAWN_TEST_PROG"

func TestMain(m *testing.M) {
	// A test program runs before MaybeRunHelper, whose close-on-exec
	// sweep would hide the descriptors "fds" is there to list. The helper
	// has the program's environment too, and is told apart by its marker.
	if prog := os.Getenv(progEnv); prog != "" && (len(os.Args) < 2 || os.Args[1] != spawn.HelperArg) {
		os.Exit(runProg(prog, os.Args[1:]))
	}
	spawn.MaybeRunHelper()
	if os.Getenv(nofileProbeEnv) != "" {
		os.Exit(nofileProbe())
	}
	os.Exit(m.Run())
}

// nofileProbeEnv makes the test binary report its RLIMIT_NOFILE and that
// of a child started through spawn (TestChildGetsOriginalNofile): its
// own was lowered to 512 before Go raised it.
const nofileProbeEnv = "ACCEPTD_SPAWN_NOFILE_PROBE"

func nofileProbe() int {
	var own syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &own); err != nil {
		fmt.Println(err)
		return 1
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Println(err)
		return 1
	}
	p, err := spawn.Start(&spawn.Spec{Path: "/bin/sh", Args: []string{"sh", "-c", "ulimit -Sn"},
		Files: []int{-1, int(w.Fd()), -1}, Umask: -1})
	w.Close()
	if err != nil {
		fmt.Println(err)
		return 1
	}
	b, _ := io.ReadAll(r)
	p.Wait()
	fmt.Printf("raised %v; child %s\n", own.Cur > 512, strings.TrimSpace(string(b)))
	return 0
}

// The programs write with syscall.Write, not os.Stdout: that keeps the Go
// runtime from opening netpoller descriptors that would show in "fds".
func say(format string, a ...any) {
	b := []byte(fmt.Sprintf(format, a...))
	for len(b) > 0 {
		n, err := syscall.Write(1, b)
		if err != nil {
			os.Exit(100)
		}
		b = b[n:]
	}
}

// runProg is the child side of every test: prog and its arguments.
func runProg(prog string, args []string) int {
	switch prog {
	case "echo":
		buf := make([]byte, 4096)
		for {
			n, err := syscall.Read(0, buf)
			if n <= 0 || err != nil {
				return 0
			}
			say("%s", buf[:n])
		}
	case "env":
		for _, kv := range os.Environ() {
			say("%s\n", kv)
		}
		return 0
	case "fds":
		return listFds()
	case "stdin-flags":
		fl, _, errno := syscall.Syscall(syscall.SYS_FCNTL, 0, syscall.F_GETFL, 0)
		if errno != 0 {
			say("error %v\n", errno)
			return 1
		}
		if fl&syscall.O_NONBLOCK != 0 {
			say("nonblocking\n")
		} else {
			say("blocking\n")
		}
		return 0
	case "pgid":
		pgid, _ := syscall.Getpgid(0)
		sid, _, _ := syscall.RawSyscall(syscall.SYS_GETSID, 0, 0, 0)
		say("pid=%d pgid=%d sid=%d\n", os.Getpid(), pgid, sid)
		return 0
	case "status":
		// cat prints them, exec'd in place (same pid): the Go runtime
		// raised this process's NOFILE soft limit, and syscall.Exec puts
		// back the one the process was started with.
		say("LISTEN_PID=%s pid=%d\n", os.Getenv("LISTEN_PID"), os.Getpid())
		err := syscall.Exec("/bin/cat", []string{"cat", "/proc/self/status", "/proc/self/limits"}, nil)
		say("error %v\n", err)
		return 1
	case "ignore-sigterm":
		signal.Ignore(syscall.SIGTERM)
		say("ready\n")
		time.Sleep(time.Minute)
		return 0
	case "sleep":
		say("ready\n")
		time.Sleep(time.Minute)
		return 0
	case "fork-grandchild", "fork-grandchild-exit":
		// The grandchild stays in the child's process group and ignores
		// SIGTERM too.
		signal.Ignore(syscall.SIGTERM)
		exe, _ := os.Executable()
		pid, err := syscall.ForkExec(exe, []string{exe}, &syscall.ProcAttr{
			Env: []string{progEnv + "=ignore-sigterm"},
		})
		if err != nil {
			say("error %v\n", err)
			return 1
		}
		say("%d\n", pid)
		if prog == "fork-grandchild-exit" {
			return 0
		}
		time.Sleep(time.Minute)
		return 0
	case "leave-group":
		// Leaves the process group spawn made for the parent's (setsid is
		// not allowed to a group leader), then waits to be stopped.
		pgid, _ := syscall.Getpgid(os.Getppid())
		if err := syscall.Setpgid(0, pgid); err != nil {
			say("error %v\n", err)
			return 1
		}
		say("ready\n")
		time.Sleep(time.Minute)
		return 0
	case "sandbox":
		return sandboxReport()
	case "exit":
		n, _ := strconv.Atoi(args[0])
		return n
	case "kill-self":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
		return 0
	}
	say("unknown test program %q\n", prog)
	return 99
}

// listFds prints the open descriptors, read with raw syscalls so that the
// listing holds no descriptor of its own but the directory's.
func listFds() int {
	dfd, err := syscall.Open("/proc/self/fd", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		say("error %v\n", err)
		return 1
	}
	buf := make([]byte, 8192)
	var names []string
	for {
		n, err := syscall.ReadDirent(dfd, buf)
		if err != nil {
			say("error %v\n", err)
			return 1
		}
		if n == 0 {
			break
		}
		_, _, names = syscall.ParseDirent(buf[:n], -1, names)
	}
	// Only descriptors without close-on-exec were inherited: the Go
	// runtime opens its own (cgroup files, epoll) close-on-exec.
	var fds []string
	for _, name := range names {
		fd, _ := strconv.Atoi(name)
		fl, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
		if errno == 0 && fl&syscall.FD_CLOEXEC == 0 {
			fds = append(fds, name)
		}
	}
	say("%s\n", strings.Join(fds, " "))
	return 0
}
