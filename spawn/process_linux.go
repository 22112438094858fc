package spawn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Process is one started child. Its methods are safe for concurrent use.
// Every Process must be waited for ([Process.Wait]): that is what reaps it,
// ends the Stop escalation and releases its descriptor.
type Process struct {
	pid         int
	path        string
	started     time.Time
	stopTimeout time.Duration
	// pidfd is the child's pidfd, -1 on kernels without CLONE_PIDFD
	// (before 5.2), where Wait blocks a thread in waitid instead.
	pidfd int

	mu       sync.Mutex
	reaped   bool // the pid (and so the pgid) may be reused: signal nothing
	stopping bool // Stop was called
	// pidfile is pidfd registered with the netpoller, made only when
	// somebody has to wait for a child that is still running: a child that
	// is gone by the time Wait looks costs no registration.
	pidfile *os.File
	timer   *time.Timer // the escalation when there is no pidfile

	// beside is the memory of a child started with Spec.NoExecWait,
	// kept until it is reaped; its execErr tells whether it ever ran
	// the program. Nil otherwise.
	beside interface{ execErr() syscall.Errno }

	waitOnce sync.Once
	done     chan struct{}
	result   Result
	err      error
}

// Start starts the program spec describes in a process group of its own
// (its pid is the group id) and returns once it has exec'd the program, so
// a missing file, a bad working directory, a refused credential or a
// failing helper setting is returned here as an error, wrapped as
// "spawn PATH: ...". The caller may close spec.Files when Start returns.
func Start(spec *Spec) (*Process, error) {
	if !filepath.IsAbs(spec.Path) {
		return nil, fmt.Errorf("spawn %s: path is not absolute", spec.Path)
	}
	if spec.Credential != nil && spec.Credential.NoSetGroups {
		// Keeping acceptd's (root's) groups in a child that runs as
		// somebody else is never what a service wants.
		return nil, fmt.Errorf("spawn %s: Credential.NoSetGroups is not supported", spec.Path)
	}
	if spec.needsHelper() {
		return startHelper(spec)
	}
	args := spec.Args
	if len(args) == 0 {
		args = []string{spec.Path}
	}
	if p, handled, err := vforkStart(spec, args); handled {
		return p, err
	}
	var files [8]uintptr
	attr := syscall.ProcAttr{
		Dir:   childDir(spec),
		Env:   spec.Env,
		Files: fileSlice(files[:0], spec.Files),
		Sys:   sysAttr(spec, spec.Credential),
	}
	attr.Sys.Chroot = spec.Chroot
	return forkExec(spec, spec.Path, args, &attr)
}

// childDir is the working directory a plain spawn sets: spec.Dir, or "/"
// under a Chroot. The kernel's fork path changes root, then directory: a
// working directory outside the new root must not remain.
func childDir(spec *Spec) string {
	if spec.Chroot != "" && spec.Dir == "" {
		return "/"
	}
	return spec.Dir
}

// fileSlice converts fds to the form syscall.ProcAttr wants, in buf when
// it is large enough.
func fileSlice(buf []uintptr, fds []int) []uintptr {
	for _, fd := range fds {
		buf = append(buf, uintptr(fd)) // -1 becomes ^uintptr(0), which ForkExec reads as -1
	}
	return buf
}

func sysAttr(spec *Spec, cred *syscall.Credential) *syscall.SysProcAttr {
	sys := &syscall.SysProcAttr{
		Setsid:      spec.Setsid,
		Setpgid:     !spec.Setsid,
		Credential:  cred,
		PidFD:       new(int),
		UseCgroupFD: spec.UseCgroupFD,
		CgroupFD:    spec.CgroupFD,
	}
	// The namespaces are made in the child before it execs the helper:
	// unshare(CLONE_NEWNS) is refused to a thread of a multi-threaded
	// process such as the helper's Go runtime. After CLONE_NEWNS the
	// syscall package remounts / recursively private, so nothing the
	// helper mounts propagates to acceptd's namespace.
	if spec.PrivateTmp {
		sys.Unshareflags |= syscall.CLONE_NEWNS
	}
	if spec.PrivateNetwork {
		sys.Unshareflags |= syscall.CLONE_NEWNET
	}
	return sys
}

// forkExec is the syscall.ForkExec that the helper path and, where
// vforkStart cannot, the plain path share. attr.Sys.PidFD must be set.
func forkExec(spec *Spec, path string, args []string, attr *syscall.ProcAttr) (*Process, error) {
	pidfd := attr.Sys.PidFD
	*pidfd = -1
	pid, err := syscall.ForkExec(path, args, attr)
	if err != nil {
		return nil, fmt.Errorf("spawn %s: %w", spec.Path, err)
	}
	return newProcess(spec, pid, *pidfd), nil
}

// newProcess is the Process of a child just started for spec.
func newProcess(spec *Spec, pid, pidfd int) *Process {
	p := &Process{
		pid:         pid,
		path:        spec.Path,
		started:     time.Now(),
		stopTimeout: spec.StopTimeout,
		pidfd:       pidfd,
		done:        make(chan struct{}),
	}
	if p.stopTimeout <= 0 {
		p.stopTimeout = DefaultStopTimeout
	}
	return p
}

// pollableLocked returns the pidfd as a file in the netpoller, making it on
// first use, or nil when there is no pidfd.
func (p *Process) pollableLocked() *os.File {
	if p.pidfile == nil && p.pidfd >= 0 {
		// A non-blocking descriptor makes os.NewFile register it with the
		// netpoller, so Wait parks a goroutine, not an OS thread. F_SETFL
		// replaces the status flags, and a pidfd has no other.
		if _, err := unix.FcntlInt(uintptr(p.pidfd), unix.F_SETFL, unix.O_NONBLOCK); err == nil {
			p.pidfile = os.NewFile(uintptr(p.pidfd), "pidfd")
		}
	}
	return p.pidfile
}

// Pid returns the child's process id, which is also its process group id.
func (p *Process) Pid() int { return p.pid }

// Started returns when the child was started.
func (p *Process) Started() time.Time { return p.started }

// Done returns a channel that is closed when Wait has returned.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to the child's whole process group. It returns
// os.ErrProcessDone once the child has been reaped: its pid may then belong
// to somebody else.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.signalLocked(sig)
}

func (p *Process) signalLocked(sig syscall.Signal) error {
	if p.reaped {
		return os.ErrProcessDone
	}
	// Until the leader is reaped its pid stays allocated, so -pid cannot
	// name another process group, nor pid another process.
	err := unix.Kill(-p.pid, sig)
	if pgid, _ := unix.Getpgid(p.pid); pgid != p.pid {
		// The child moved to a group or session of its own (a program
		// that calls setsid): the group signal missed it.
		err = unix.Kill(p.pid, sig)
	}
	if err != nil {
		return fmt.Errorf("signal %s group %d: %w", p.path, p.pid, err)
	}
	return nil
}

// Stop asks the child's process group to end: SIGTERM (and SIGCONT, so
// that a stopped process sees it, as systemd does), then SIGKILL to the
// group after the Spec's StopTimeout unless the child has exited by then.
// Stop returns at once. The escalation is carried out by Wait, which must
// be running or be called later; calling Stop again does nothing.
func (p *Process) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped || p.stopping {
		return
	}
	p.stopping = true
	_ = p.signalLocked(syscall.SIGTERM) // an error means the group is gone already
	_ = p.signalLocked(syscall.SIGCONT)
	if f := p.pollableLocked(); f != nil {
		// Wakes the Wait parked on the pidfd when SIGKILL is due.
		_ = f.SetReadDeadline(time.Now().Add(p.stopTimeout))
		return
	}
	p.timer = time.AfterFunc(p.stopTimeout, func() { _ = p.Signal(syscall.SIGKILL) })
}

// Wait waits for the child to exit and reaps it, only it: never any other
// pid. After the child has exited, and before its pid is released, Wait
// sends SIGKILL to what remains of its process group, so that leftover
// grandchildren of a per-connection program do not linger. A descendant
// that moved to a process group or session of its own escapes this; only a
// cgroup would catch it.
//
// Wait waits once; later and concurrent calls return the same Result and
// error when it is done. The error is non-nil only when the child could
// not be waited for (someone else reaped it), and the Result is then zero.
func (p *Process) Wait() (Result, error) {
	p.waitOnce.Do(p.wait)
	return p.result, p.err
}

func (p *Process) wait() {
	defer close(p.done)
	exited, err := p.exited()
	if err == nil && !exited {
		p.mu.Lock()
		f := p.pollableLocked()
		p.mu.Unlock()
		if f != nil {
			err = p.waitPoll(f)
		} else {
			err = p.waitBlocking()
		}
	}
	end := time.Now()

	var ws syscall.WaitStatus
	var ru syscall.Rusage
	p.mu.Lock()
	if err == nil {
		// The leader is a zombie: its pid, and so the group id, cannot be
		// reused until the wait4 below, which makes this kill safe.
		_ = unix.Kill(-p.pid, syscall.SIGKILL)
		err = waitReap(p.pid, &ws, &ru)
	}
	p.reaped = true
	if p.timer != nil {
		p.timer.Stop()
	}
	if p.pidfile != nil {
		p.pidfile.Close()
	} else if p.pidfd >= 0 {
		syscall.Close(p.pidfd)
	}
	p.mu.Unlock()
	if err != nil {
		p.err = fmt.Errorf("wait %s (pid %d): %w", p.path, p.pid, err)
		return
	}
	p.result = resultOf(ws, &ru, end.Sub(p.started))
	if p.beside != nil {
		if e := p.beside.execErr(); e != 0 {
			p.result.ExecErr = fmt.Errorf("spawn %s: %w", p.path, e)
		}
		p.beside = nil
	}
}

// exited reports whether the child has exited, without reaping it and
// without waiting. An error (ECHILD: somebody else reaped it) means its
// pid may be reused already: wait then neither kills its group nor reaps.
func (p *Process) exited() (bool, error) {
	var info unix.Siginfo
	// WNOWAIT leaves the zombie in place for the group kill in wait.
	var err error = unix.EINVAL
	if p.pidfd >= 0 {
		err = unix.Waitid(unix.P_PIDFD, p.pidfd, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	}
	if err == unix.EINVAL {
		// No pidfd, or a kernel with pidfds but without P_PIDFD (5.2, 5.3).
		err = unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	}
	if err == unix.EAGAIN { // a non-blocking pidfd says "not yet" this way
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return info.Signo != 0, nil
}

// waitPoll parks on the pidfd f until the child has exited, without
// reaping it. A read deadline set by Stop wakes it to send SIGKILL.
func (p *Process) waitPoll(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	ready := func(uintptr) bool {
		var exited bool
		exited, werr = p.exited()
		return exited || werr != nil
	}
	for {
		err := rc.Read(ready)
		if err == nil {
			return werr
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		p.mu.Lock()
		_ = p.signalLocked(syscall.SIGKILL)
		p.mu.Unlock()
		_ = f.SetReadDeadline(time.Time{})
	}
}

// waitBlocking is waitPoll for kernels without pidfds: it holds a thread
// in waitid until the child has exited, without reaping it.
func (p *Process) waitBlocking() error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err
		}
	}
}

// waitReap reaps pid, which has exited.
func waitReap(pid int, ws *syscall.WaitStatus, ru *syscall.Rusage) error {
	for {
		_, err := syscall.Wait4(pid, ws, 0, ru)
		if err != syscall.EINTR {
			return err
		}
	}
}
