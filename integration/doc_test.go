// Package integration holds the black-box tests of acceptd: TestMain
// builds the real binary once, and every test drives it the way a user
// does: it writes a configuration file, runs `acceptd run`, connects,
// asks `acceptd status -json`, sends signals and looks at /proc. Nothing
// of acceptd's own packages is imported.
//
// The per-connection programs are this test binary itself, copied next to
// the built acceptd and selected by ACCEPTD_TEST_PROG in the service's
// environment (see prog_test.go), plus real inetd programs from the host
// (busybox httpd -i, git daemon --inetd), which are skipped when missing
// unless ACCEPTD_REQUIRE_PEERS=1.
package integration
