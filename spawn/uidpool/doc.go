// Package uidpool hands out dynamic users: UID/GID pairs (the GID equals
// the UID) from a range, one per live instance, as systemd's DynamicUser=
// promises but does not keep for per-connection instances.
//
// A UID is handed out only when
//   - this Pool does not hold it,
//   - no other process holds it: every held UID is an exclusive flock(2)
//     on the file DIR/UID (DefaultDir is /run/acceptd/dynamic-uid), so two
//     acceptd processes on one host never hand out the same UID, and a
//     holder that dies frees its UIDs with its descriptors;
//   - the user database has no such UID and no such GID: /etc/passwd and
//     /etc/group are read again whenever their size, inode or mtime
//     change (a stat(2) of each per Acquire, no NSS lookup);
//   - systemd has not allocated it (/run/systemd/dynamic-uid/UID exists).
//
// A lock file is created on acquire and unlinked on release while still
// locked. A process that opened the file before the unlink and locks it
// after finds that its descriptor no longer names DIR/UID and treats the
// UID as taken, so an unlink never lets two holders in.
//
// The file holds the holder's pid and a label (the instance name) for an
// operator's benefit; the lock, not the content, is what counts.
//
// Releasing a UID is the caller's decision: it must wait until no process
// of the instance is left (an empty cgroup, or no process with the UID).
package uidpool
