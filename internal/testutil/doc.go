// Package testutil holds helpers shared by acceptd's tests: short
// directories for UNIX sockets, bounded polling, the rule for tests that
// need a program from the host (busybox, git, xinetd ...), and counting a
// process's fds, threads and children from /proc.
//
// It imports nothing from acceptd, so that the black-box tests in
// integration/ can use it and still talk to acceptd only as a user does.
package testutil
