package spawn

import (
	"fmt"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The plain spawn path's own fork+exec (linux/amd64).
//
// syscall.ForkExec reports a failure before exec (chdir, setuid, execve)
// through a pipe: after the vfork, the parent reads it until the child's
// close-on-exec closes it. The kernel wakes a vfork parent before the
// child gets to close its close-on-exec fds, so that read sleeps and is
// woken again: two more context switches per spawn, and a blocking
// syscall whose P the scheduler hands to another thread, which keeps the
// runtime's sysmon polling every 20 µs. Here the child shares the
// parent's memory (CLONE_VM) and the parent is suspended until the child
// has exec'd or exited (CLONE_VFORK), so the child writes its error into
// the parent's memory instead, and there is no pipe at all.
//
// The child's part is Go's forkAndExecInChild1 cut down to what a plain
// Spec needs: setsid or setpgid, the signal mask restored (the kernel resets the handlers), chroot,
// credential, chdir, the descriptor shuffle, RLIMIT_NOFILE restored, exec.
// The helper path, which runs a second Go start-up anyway, keeps
// syscall.ForkExec.
//
// Measured side by side with the syscall.ForkExec build and tcpserver in
// one run (bench/README.md), per connection at 64 clients: acceptd's CPU
// 180 µs instead of 250, 2 context switches instead of 5, and 0.83 of
// tcpserver's connections/s instead of 0.78 (at 8 clients 1.00 instead
// of 0.92).
//
// Spec.NoExecWait goes one step further (startBeside): clone3 without
// CLONE_VFORK, the child on a 2 KiB stack of its own inside a heap object
// that also holds everything else it reads or writes, which its Process
// keeps until it is reaped. The spawning thread (an accept loop) goes on
// at once instead of sleeping until the exec: one context switch fewer
// per spawn and no P of the runtime's held idle meanwhile, so the next
// connection is accepted while the child execs. The child runs only
// nosplit code and raw system calls, entered from assembly (rawCloneRun)
// through childRun's ABI wrapper; under the race detector that wrapper
// calls into the race runtime, which cannot run there, so race builds
// wait for the exec as before. bench/ab-spawn.sh, 5 rounds of 3000
// connections (medians): at 64 clients 1889 -> 2240 conn/s (tcpserver
// 1983), acceptd's CPU 183 -> 150 µs and its switches 1.98 -> 0.85 per
// connection; at 8 and 1 client unchanged within noise.

//go:linkname runtimeBeforeFork syscall.runtime_BeforeFork
func runtimeBeforeFork()

//go:linkname runtimeAfterFork syscall.runtime_AfterFork
func runtimeAfterFork()

func rawVfork(trap, a1, a2, a3 uintptr) (r1, err uintptr)

// rawCloneRun is clone3(args, size) for a child on a stack of its own
// (args.stack), which calls childRun(c) there.
func rawCloneRun(args, size, c uintptr) (r1, err uintptr)

// vforkStart starts the plain spec (no helper settings) with argv args,
// as Start's syscall.ForkExec path would, but reports the child's failure
// without a pipe. handled is false when it cannot (more descriptors than
// it keeps room for, no original RLIMIT_NOFILE known); nothing was
// started then.
func vforkStart(spec *Spec, args []string) (p *Process, handled bool, err error) {
	if len(spec.Files) > maxChildFiles {
		return nil, false, nil
	}
	limits := origNofile()
	if !limits.ok {
		return nil, false, nil
	}

	// Everything the child touches is made here, before the fork: the
	// child must not allocate.
	c := child{setsid: spec.Setsid, cred: spec.Credential, nofile: limits.forChild(), pidfd: -1, sigmask: threadSigmask()}
	if c.argv0, err = syscall.BytePtrFromString(spec.Path); err == nil {
		if c.argv, err = syscall.SlicePtrFromStrings(args); err == nil {
			c.envv, err = syscall.SlicePtrFromStrings(spec.Env)
		}
	}
	if dir := childDir(spec); err == nil && dir != "" {
		c.dir, err = syscall.BytePtrFromString(dir)
	}
	if spec.Chroot != "" && err == nil {
		c.chroot, err = syscall.BytePtrFromString(spec.Chroot)
	}
	if err != nil {
		return nil, true, fmt.Errorf("spawn %s: %w", spec.Path, err)
	}
	c.args = cloneArgs{
		// CLONE_CLEAR_SIGHAND: the kernel resets the handled signals to
		// their defaults, which the runtime's child hook otherwise does
		// with one rt_sigaction per signal (about 60 system calls while
		// the spawning thread waits).
		flags:      unix.CLONE_VFORK | unix.CLONE_VM | unix.CLONE_PIDFD | unix.CLONE_CLEAR_SIGHAND, // start fills in where the pidfd goes
		exitSignal: uint64(syscall.SIGCHLD),
	}
	if spec.UseCgroupFD {
		c.args.flags |= unix.CLONE_INTO_CGROUP
		c.args.cgroup = uint64(spec.CgroupFD)
	}

	if spec.NoExecWait && !raceEnabled {
		return startBeside(spec, &c)
	}
	// A copy: the child rearranges it.
	var fds [maxChildFiles]int
	c.fd = fds[:copy(fds[:], spec.Files)]

	// No syscall.ForkLock: it guards descriptors made without
	// close-on-exec from birth, and on Linux Go makes none; taken for
	// writing, it would serialise the spawns of the accept loops, each of
	// which holds it for a whole vfork (syscall.ForkExec avoids that with
	// a counting scheme of its own).
	pid, errno := c.start()
	switch {
	case errno == unix.ENOSYS || errno == unix.EINVAL:
		// clone3 itself refused: a kernel before 5.3 (no clone3) or
		// 5.5 (no CLONE_CLEAR_SIGHAND). Nothing was started;
		// syscall.ForkExec does without them.
		return nil, false, nil
	case errno == 0 && c.err != 0:
		// The child exited after writing its error; reap it.
		var ws syscall.WaitStatus
		_ = waitReap(pid, &ws, nil)
		syscall.Close(int(c.pidfd))
		errno = c.err
	}
	if errno != 0 {
		return nil, true, fmt.Errorf("spawn %s: %w", spec.Path, errno)
	}
	return newProcess(spec, pid, int(c.pidfd)), true, nil
}

// besideChild is a child started with Spec.NoExecWait, which runs beside
// acceptd until it execs instead of on the suspended spawning thread's
// stack: everything it reads or writes, its stack included, is here, on
// the heap, and its Process keeps it until the child has been reaped
// (about 2.5 KiB per running child, with its argv and environment). A
// Process dropped without Wait would let the allocator reuse memory the
// child may still write: every Process must be waited for.
type besideChild struct {
	child
	fds [maxChildFiles]int
	// stack is the child's. The child runs only nosplit code, whose
	// chains the linker bounds to 800 bytes, and receives no signal on
	// it (every handler is reset and every signal blocked until just
	// before the exec).
	stack [2048]byte
}

// execErr is the errno the child wrote when it failed before or in
// execve, 0 when it exec'd.
func (b *besideChild) execErr() syscall.Errno { return b.err }

// startBeside starts c without waiting for its exec: clone3 without
// CLONE_VFORK, the child on a stack of its own in the shared address
// space. The spawning thread goes on at once; with CLONE_VFORK the
// kernel suspends it until the child's exec (two context switches per
// spawn, and a P of the runtime's held idle meanwhile).
func startBeside(spec *Spec, c *child) (*Process, bool, error) {
	b := &besideChild{child: *c}
	b.child.fd = b.fds[:copy(b.fds[:], spec.Files)]
	b.args.flags &^= unix.CLONE_VFORK
	b.args.stack = uint64(uintptr(unsafe.Pointer(&b.stack[0])))
	b.args.stackSize = uint64(len(b.stack))
	pid, errno := b.child.startBeside()
	if errno == unix.ENOSYS || errno == unix.EINVAL {
		return nil, false, nil
	}
	if errno != 0 {
		return nil, true, fmt.Errorf("spawn %s: %w", spec.Path, errno)
	}
	p := newProcess(spec, pid, int(b.pidfd))
	p.beside = b
	return p, true, nil
}

// threadSigmask is the signal mask of the runtime's threads, which a
// child restores before exec (the runtime blocks every signal across the
// fork). It is the same in every thread and for the life of the process:
// the runtime sets it when it starts a thread and changes it only around
// a fork, and acceptd has no cgo.
var threadSigmask = sync.OnceValue(func() uint64 {
	var m uint64
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 0, 0, uintptr(unsafe.Pointer(&m)), 8, 0, 0)
	return m
})

// maxChildFiles is how many descriptors vforkStart hands a child; more
// take syscall.ForkExec.
const maxChildFiles = 16

// cloneArgs is struct clone_args of clone3(2).
type cloneArgs struct {
	flags      uint64
	pidFD      uint64
	childTID   uint64
	parentTID  uint64
	exitSignal uint64
	stack      uint64
	stackSize  uint64
	tls        uint64
	setTID     uint64
	setTIDSize uint64
	cgroup     uint64
}

// child is what the child of one vforkStart needs, prepared by the parent.
type child struct {
	argv0       *byte
	argv, envv  []*byte
	dir, chroot *byte
	fd          []int
	setsid      bool
	cred        *syscall.Credential
	nofile      *unix.Rlimit
	// args are clone3's; pidfd is where the kernel puts the child's.
	args  cloneArgs
	pidfd int32
	// sigmask is the spawning thread's signal mask, which the child
	// restores before exec (the runtime blocks every signal across the
	// fork).
	sigmask uint64
	// err is written by the child when it fails before or in execve.
	err syscall.Errno
}

// start clones and, in the child, execs. It returns in the parent only,
// once the child has exec'd or exited.
//
// In the child, which runs on the parent's stack while the parent is
// suspended, only assembly system calls and the runtime's nosplit fork
// hooks may run: no allocation, no stack growth, no write barrier, no
// race instrumentation.
//
//go:noinline
//go:norace
//go:nocheckptr
func (c *child) start() (pid int, err1 syscall.Errno) {
	var r1, e uintptr
	runtimeBeforeFork()
	// The address is taken here, after this function's prologue, the
	// last point where a stack that c may live on could move: only
	// nosplit code runs from here to the clone.
	c.args.pidFD = uint64(uintptr(unsafe.Pointer(&c.pidfd)))
	r1, e = rawVfork(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&c.args)), unsafe.Sizeof(c.args), 0)
	if e != 0 || r1 != 0 {
		// The parent (or a failed clone).
		runtimeAfterFork()
		return int(r1), syscall.Errno(e)
	}

	childRun(c)
	return 0, 0 // not reached: childRun exits
}

// startBeside is start for a child on a stack of its own (args.stack),
// without CLONE_VFORK: it returns in the parent as soon as the child
// exists.
//
//go:noinline
//go:norace
//go:nocheckptr
func (c *child) startBeside() (pid int, err syscall.Errno) {
	// The child inherits this thread's signal mask: BeforeFork blocks
	// every signal, as for a vfork.
	runtimeBeforeFork()
	c.args.pidFD = uint64(uintptr(unsafe.Pointer(&c.pidfd)))
	r1, e := rawCloneRun(uintptr(unsafe.Pointer(&c.args)), unsafe.Sizeof(c.args), uintptr(unsafe.Pointer(c)))
	runtimeAfterFork()
	return int(r1), syscall.Errno(e)
}

// childRun is the child's part: the process set up as c says, then
// execve; on a failure the errno goes to c.err and the child exits 253.
// It runs on the parent's stack (vfork) or on its own (startBeside):
// only nosplit code and raw system calls, no allocation, no write
// barrier, no race instrumentation.
//
//go:nosplit
//go:norace
//go:nocheckptr
func childRun(c *child) {
	var (
		err1 syscall.Errno
		i    int
		next int
	)
	if c.setsid {
		_, _, err1 = syscall.RawSyscall(syscall.SYS_SETSID, 0, 0, 0)
	} else {
		_, _, err1 = syscall.RawSyscall(syscall.SYS_SETPGID, 0, 0, 0)
	}
	if err1 != 0 {
		goto fail
	}
	// The handlers are the defaults already (CLONE_CLEAR_SIGHAND); the
	// signal mask is restored.
	if _, _, err1 = syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&c.sigmask)), 0, 8, 0, 0); err1 != 0 {
		goto fail
	}
	if c.chroot != nil {
		if _, _, err1 = syscall.RawSyscall(syscall.SYS_CHROOT, uintptr(unsafe.Pointer(c.chroot)), 0, 0); err1 != 0 {
			goto fail
		}
	}
	if c.cred != nil {
		var groups uintptr
		if len(c.cred.Groups) > 0 {
			groups = uintptr(unsafe.Pointer(&c.cred.Groups[0]))
		}
		if _, _, err1 = syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(c.cred.Groups)), groups, 0); err1 != 0 {
			goto fail
		}
		if _, _, err1 = syscall.RawSyscall(syscall.SYS_SETGID, uintptr(c.cred.Gid), 0, 0); err1 != 0 {
			goto fail
		}
		if _, _, err1 = syscall.RawSyscall(syscall.SYS_SETUID, uintptr(c.cred.Uid), 0, 0); err1 != 0 {
			goto fail
		}
	}
	if c.dir != nil {
		if _, _, err1 = syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(c.dir)), 0, 0); err1 != 0 {
			goto fail
		}
	}
	// Pass 1: move every fd[i] < i above all of them, so that pass 2
	// does not overwrite one it still needs.
	next = len(c.fd)
	for i = 0; i < len(c.fd); i++ {
		if c.fd[i] >= next {
			next = c.fd[i] + 1
		}
	}
	for i = 0; i < len(c.fd); i++ {
		if c.fd[i] >= 0 && c.fd[i] < i {
			if _, _, err1 = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(c.fd[i]), uintptr(next), syscall.O_CLOEXEC); err1 != 0 {
				goto fail
			}
			c.fd[i] = next
			next++
		}
	}
	// Pass 2: dup fd[i] onto i, without close-on-exec.
	for i = 0; i < len(c.fd); i++ {
		switch {
		case c.fd[i] < 0:
			syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(i), 0, 0)
		case c.fd[i] == i:
			if _, _, err1 = syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(i), syscall.F_SETFD, 0); err1 != 0 {
				goto fail
			}
		default:
			if _, _, err1 = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(c.fd[i]), uintptr(i), 0); err1 != 0 {
				goto fail
			}
		}
	}
	for i = len(c.fd); i < 3; i++ {
		syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(i), 0, 0)
	}
	if c.nofile != nil {
		syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, syscall.RLIMIT_NOFILE, uintptr(unsafe.Pointer(c.nofile)), 0, 0, 0)
	}
	_, _, err1 = syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(c.argv0)),
		uintptr(unsafe.Pointer(&c.argv[0])), uintptr(unsafe.Pointer(&c.envv[0])))
fail:
	c.err = err1
	for {
		syscall.RawSyscall(syscall.SYS_EXIT, 253, 0, 0)
	}
}
