package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// runProg is the test binary acting as a per-connection program; mode
// comes from ACCEPTD_TEST_PROG. Its stdin and stdout are the connection.
func runProg(mode string) int {
	switch mode {
	case "echo":
		// Serve until the client closes its side.
		io.Copy(os.Stdout, os.Stdin)
		return 0
	case "greet":
		// "hello" says the connection is being served; then hold it
		// until the client closes.
		os.Stdout.WriteString("hello\n")
		io.Copy(io.Discard, os.Stdin)
		return 0
	case "line":
		os.Stdout.WriteString("hi\n")
		return 0
	case "env":
		env := os.Environ()
		sort.Strings(env)
		os.Stdout.WriteString(strings.Join(env, "\n") + "\n")
		return 0
	case "env-after-line":
		// Hold the connection (and its max_connections slot) until the
		// client sends a line, then report as "env" does.
		var b [1]byte
		for {
			if n, err := os.Stdin.Read(b[:]); err != nil || (n == 1 && b[0] == '\n') {
				break
			}
		}
		return runProg("env")
	case "fds":
		b, _ := json.Marshal(selfReport())
		os.Stdout.Write(append(b, '\n'))
		return 0
	case "stderr":
		os.Stderr.WriteString("a line on stderr\n")
		os.Stdout.WriteString("done\n")
		return 0
	case "hang":
		// Ignore the connection entirely; only a signal ends this.
		fmt.Printf("ready %d\n", os.Getpid())
		time.Sleep(10 * time.Minute)
		return 0
	case "crash":
		os.Stdout.WriteString("crashing\n")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
		return 1
	case "fail":
		os.Stdout.WriteString("failing\n")
		return 3
	case "exit-without-reading":
		return 0
	case "ignore-term":
		// Ignore SIGTERM and start a grandchild in the same process
		// group that ignores it too: only SIGKILL to the whole group
		// ends both.
		signal.Ignore(syscall.SIGTERM)
		gc := exec.Command(os.Args[0])
		gc.Env = append(os.Environ(), progEnv+"=ignore-term-child")
		if err := gc.Start(); err != nil {
			fmt.Printf("error %v\n", err)
			return 1
		}
		fmt.Printf("pid %d grandchild %d\n", os.Getpid(), gc.Process.Pid)
		time.Sleep(10 * time.Minute)
		return 0
	case "ignore-term-child":
		signal.Ignore(syscall.SIGTERM)
		time.Sleep(10 * time.Minute)
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown %s %q\n", progEnv, mode)
	return 2
}

// fdReport is what the "fds" program says about itself.
type fdReport struct {
	FDs      map[string]string `json:"fds"` // fd number -> link target
	Nonblock bool              `json:"stdin_nonblock"`
	// Socket options of stdin; -1 when not a socket or not TCP.
	KeepAlive int `json:"keepalive"`
	NoDelay   int `json:"nodelay"`
	Pid       int `json:"pid"`
	Pgid      int `json:"pgid"`
	// Uid, Gid and Groups are the lines of /proc/self/status.
	Uid    string `json:"uid"`
	Gid    string `json:"gid"`
	Groups string `json:"groups"`
	Cwd    string `json:"cwd"`
}

func selfReport() fdReport {
	r := fdReport{FDs: map[string]string{}, KeepAlive: -1, NoDelay: -1, Pid: os.Getpid()}
	r.Pgid, _ = unix.Getpgid(0)
	// List the fds first, with raw syscalls: os.Open would start the
	// runtime's poller, whose epoll and eventfd would show up. The
	// directory's own fd is left out. (prog sets GODEBUG so that the
	// runtime does not keep cgroup files open either.)
	if dfd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		buf := make([]byte, 8192)
		var names []string
		for {
			n, err := unix.ReadDirent(dfd, buf)
			if err != nil || n <= 0 {
				break
			}
			_, _, names = unix.ParseDirent(buf[:n], -1, names)
		}
		for _, n := range names {
			if n == strconv.Itoa(dfd) {
				continue
			}
			target, _ := os.Readlink("/proc/self/fd/" + n)
			r.FDs[n] = target
		}
		unix.Close(dfd)
	}
	if fl, err := unix.FcntlInt(0, unix.F_GETFL, 0); err == nil {
		r.Nonblock = fl&unix.O_NONBLOCK != 0
	}
	if sa, err := unix.Getsockname(0); err == nil {
		switch sa.(type) {
		case *unix.SockaddrInet4, *unix.SockaddrInet6:
			r.KeepAlive, _ = unix.GetsockoptInt(0, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
			r.NoDelay, _ = unix.GetsockoptInt(0, unix.IPPROTO_TCP, unix.TCP_NODELAY)
		}
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimSpace(v)
			switch k {
			case "Uid":
				r.Uid = v
			case "Gid":
				r.Gid = v
			case "Groups":
				r.Groups = v
			}
		}
	}
	r.Cwd, _ = os.Getwd()
	return r
}
