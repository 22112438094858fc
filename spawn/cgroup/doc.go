// Package cgroup gives each acceptd instance a cgroup v2 of its own: the
// kill domain that a double-forking, setsid-calling descendant cannot
// leave, and where the controllers are enabled, the place for tasks_max
// (pids.max) and memory_max (memory.max).
//
// The layout is MOUNT/acceptd/PID/NAME: MOUNT the cgroup2 mount found in
// /proc/self/mountinfo, PID the acceptd process (so that two acceptd on
// one host never share a directory), NAME one instance ("hello@8"). A
// child is born in its cgroup through clone3(CLONE_INTO_CGROUP) with the
// directory's descriptor ([spawn.Spec.CgroupFD]), so there is no window in
// which it could fork outside. cgroup.kill (Linux 5.14) kills everything
// in it at once; the directory is removed once cgroup.events says it is
// no longer populated.
//
// [Detect] is called once at start-up; on a host without a writable
// cgroup2 mount with cgroup.kill it reports why, and the caller falls
// back to process groups.
package cgroup
