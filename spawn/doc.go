// Package spawn starts, watches and stops one child process, the way
// acceptd runs one program per connection.
//
// It is the hot path of an inetd-style service, so it does the least a
// spawn needs: one vfork+exec (no PATH lookup, no environment building, no
// goroutines per child), a pidfd from
// clone3(CLONE_PIDFD) that Wait parks on in the runtime's netpoller instead
// of holding an OS thread in wait4, and reaping by pid only. spawn never
// calls wait4(-1): other code in the same process may use os/exec, and a
// catch-all reaper would steal its children.
//
// On linux/amd64 the vfork+exec of a plain Spec is spawn's own (a cut-down
// copy of syscall.ForkExec's child code): the child reports a failure by
// writing into the parent's memory, which it shares until exec, where
// syscall.ForkExec uses a pipe whose read puts the parent to sleep a
// second time per spawn (vfork_linux_amd64.go has the measurements).
// The helper path, and other platforms, use [syscall.ForkExec].
//
// With [Spec.NoExecWait] (acceptd's per-connection instances) that child
// does not run on the spawning thread's stack while the kernel suspends
// the thread until the exec (CLONE_VFORK): it gets a small stack of its
// own in the shared address space, and Start returns as soon as it
// exists. A failed exec is then reported by Wait ([Result.ExecErr]).
//
// A child may be born in a cgroup v2 of its own ([Spec.CgroupFD], clone3
// with CLONE_INTO_CGROUP) and under another root ([Spec.Chroot]) on that
// same path. Subpackage uidpool hands out dynamic users, subpackage cgroup
// makes and kills the per-instance cgroups.
//
// What the kernel's fork path cannot do (resource limits, no_new_privs, a
// umask, LISTEN_PID equal to the child's own pid, a private /tmp, lo up in
// a private network namespace) is done by a helper: the
// acceptd binary itself, re-executed with a hidden first argument, which
// applies the settings and then execs the real program in place, keeping
// the pid (the moby "reexec" pattern). Only a Spec that asks for one of
// these settings pays for the second exec; see [MaybeRunHelper].
//
// Every child runs in a process group of its own (or its own session with
// [Spec.Setsid]). [Process.Signal] and [Process.Stop] address the whole
// group, and [Process.Wait] kills what is left of the group once the child
// itself has exited, so the grandchildren of a per-connection program do
// not outlive it.
//
// The package also builds the environment of a per-connection program
// ([ConnEnv], [MergeEnv]): the systemd and UCSPI names listed in CONTRACT
// "What a per-connection program gets".
//
// spawn knows nothing of the configuration or of the server: callers
// translate their model into a [Spec]. It is Linux only.
package spawn
