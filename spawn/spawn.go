package spawn

import (
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultStopTimeout is the time [Process.Stop] leaves a child between
// SIGTERM and SIGKILL when [Spec.StopTimeout] is zero (systemd's default
// TimeoutStopSec is longer; 5s matches CONTRACT's stop_timeout default).
const DefaultStopTimeout = 5 * time.Second

// Rlimit is one resource limit applied in the child before it execs.
type Rlimit struct {
	Resource int // unix.RLIMIT_*
	Cur, Max uint64
}

// Spec is everything needed to start one child.
//
// The zero values of the optional fields keep the spawn on the fast path:
// one vfork+exec; but Umask must be set to -1 for that (its zero value is
// the umask 0). Setting Limits, NoNewPrivs, Umask >= 0, ListenPID,
// PrivateTmp or PrivateNetwork routes
// the spawn through the helper (see [MaybeRunHelper]): /proc/self/exe run
// again, which costs the start-up of a Go program (several milliseconds
// against a fraction of one) and needs /proc.
type Spec struct {
	// Path is the absolute path of the program. It is not looked up in
	// PATH: callers resolve it once, not once per connection.
	Path string
	// Args is argv, including argv[0]. Empty means {Path}.
	Args []string
	// Env is the complete environment; nothing of acceptd's own is
	// inherited. Nil means an empty environment.
	Env []string
	// Dir is the working directory; "" keeps acceptd's.
	Dir string

	// Files are the child's descriptors 0, 1, 2, 3, ...: raw fds owned by
	// the caller, who may close them as soon as Start returns. They may be
	// close-on-exec; spawn dups them into place. A value of -1 leaves that
	// descriptor closed in the child; a caller that wants /dev/null opens
	// it and passes its fd. Descriptors 0, 1 and 2 beyond len(Files) are
	// closed. No other descriptor reaches the child, provided the caller's
	// process opens everything close-on-exec, as Go does.
	//
	// The O_NONBLOCK flag belongs to the open file description, which the
	// child shares: pass sockets in blocking mode, because most inetd-style
	// programs expect it.
	Files []int

	// Credential, when not nil, sets the child's user, group and
	// supplementary groups. Groups empty means setgroups([]) so that
	// nothing of root's groups remains; NoSetGroups must stay false.
	// This needs root (CAP_SETUID, CAP_SETGID) even when the ids are
	// acceptd's own: a caller running unprivileged leaves it nil.
	Credential *syscall.Credential

	// Limits are setrlimit(2) calls made in the child (needs the helper).
	Limits []Rlimit
	// NoNewPrivs sets PR_SET_NO_NEW_PRIVS in the child (needs the helper).
	NoNewPrivs bool
	// Umask is the child's umask; -1 inherits acceptd's. Note that the
	// zero value 0 is a real umask and therefore takes the helper path:
	// callers that do not care set -1.
	Umask int
	// ListenPID adds LISTEN_PID=<the child's own pid> to Env (replacing
	// any LISTEN_PID there) as systemd does for LISTEN_FDS (needs the
	// helper, since the pid is only known after the fork).
	ListenPID bool

	// Chroot is the child's root directory; "" keeps acceptd's. Path and
	// Dir are then inside it, and Dir "" means its "/". Alone it stays
	// on the plain path (SysProcAttr.Chroot); with helper settings the
	// helper changes root after mounting PrivateTmp.
	Chroot string
	// PrivateTmp gives the child a mount namespace of its own (mounts
	// made private first, so nothing propagates back) with a fresh tmpfs
	// on /tmp and on /var/tmp when that exists. It vanishes with the last
	// process of the namespace. Needs the helper and CAP_SYS_ADMIN.
	PrivateTmp bool
	// PrivateNetwork starts the child in a new network namespace whose
	// only device, lo, the helper brings up. The descriptors in Files
	// keep working: a socket belongs to the namespace it was made in.
	// Needs the helper and CAP_SYS_ADMIN.
	PrivateNetwork bool
	// CgroupFD, when UseCgroupFD is set, is an open cgroup v2 directory
	// that the child is born in (clone3 CLONE_INTO_CGROUP): no moment
	// exists when it or a descendant is outside it. It keeps the plain
	// path one vfork+exec.
	UseCgroupFD bool
	CgroupFD    int

	// Setsid starts the child in a new session. Otherwise it gets a new
	// process group in acceptd's session. Either way its pid is its
	// process group id.
	Setsid bool
	// StopTimeout is the time between SIGTERM and SIGKILL in
	// [Process.Stop]; 0 means [DefaultStopTimeout].
	StopTimeout time.Duration

	// NoExecWait lets Start return as soon as the child exists, before
	// it has exec'd the program, on the plain path of linux/amd64
	// (elsewhere, and under the race detector, it changes nothing). A
	// failure before or in execve (a program gone since the
	// configuration was read, a refused setuid) is then not Start's
	// error but Wait's Result.ExecErr.
	NoExecWait bool
}

// needsHelper reports whether s asks for something only the helper can do.
func (s *Spec) needsHelper() bool {
	return len(s.Limits) > 0 || s.NoNewPrivs || s.Umask >= 0 || s.ListenPID || s.PrivateTmp || s.PrivateNetwork
}

// Result is how a child ended.
type Result struct {
	// Exited is true when the child called exit; ExitCode is then its
	// status. When a signal ended it, Exited is false, ExitCode is -1 and
	// Signal is set.
	Exited   bool
	ExitCode int
	Signal   syscall.Signal
	// UserTime, SysTime and MaxRSS (bytes) are the child's own rusage,
	// not its reaped descendants'.
	UserTime, SysTime time.Duration
	MaxRSS            int64
	// Duration is the time from Start to the exit being noticed.
	Duration time.Duration
	// ExecErr is set when a child started with Spec.NoExecWait never
	// ran the program: it failed before or in execve (wrapped as
	// "spawn PATH: ..."), and exited with status 253.
	ExecErr error
}

// Success reports whether the child exited with status 0.
func (r Result) Success() bool { return r.Exited && r.ExitCode == 0 }

// String is "exit status N" for an exit and "signal NAME" for a signal,
// NAME as in signal.h ("signal SIGKILL"; "signal 42" when unnamed).
func (r Result) String() string {
	if r.Exited {
		return "exit status " + strconv.Itoa(r.ExitCode)
	}
	if name := unix.SignalName(r.Signal); name != "" {
		return "signal " + name
	}
	return "signal " + strconv.Itoa(int(r.Signal))
}

// resultOf turns what wait4 returned into a Result.
func resultOf(ws syscall.WaitStatus, ru *syscall.Rusage, d time.Duration) Result {
	r := Result{
		ExitCode: -1,
		UserTime: time.Duration(ru.Utime.Nano()),
		SysTime:  time.Duration(ru.Stime.Nano()),
		MaxRSS:   ru.Maxrss * 1024, // Linux reports kilobytes
		Duration: d,
	}
	switch {
	case ws.Exited():
		r.Exited = true
		r.ExitCode = ws.ExitStatus()
	case ws.Signaled():
		r.Signal = ws.Signal()
	}
	return r
}
