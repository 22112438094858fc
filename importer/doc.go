// Package importer translates inetd and xinetd configurations into
// acceptd's HCL, for `acceptd import inetd|xinetd FILE...` (see CONTRACT:
// Command line).
//
// [Inetd] reads /etc/inetd.conf lines (the BSD, netkit and openbsd-inetd
// dialects: `nowait.N`, `user:group` and `user.group`, `host:service`
// and `host:` default-address lines, `#<off>#` lines of update-inetd);
// [Xinetd] reads xinetd.conf and xinetd.d files, with their defaults
// block. Both take the files' contents, not their names on disk, and a
// [Services] table parsed from /etc/services by [ParseServices]: the
// package reads no file, resolves no name over the network, opens no
// socket and starts no process, so every translation is a pure function
// of its input and can be tested against golden files.
//
// The output is meant to be read before it is used. Each service is
// preceded by the line or block it came from, and every setting that
// acceptd does differently or not at all becomes a "note:" comment next
// to it. Where a faithful translation is impossible and a loose one would
// let more clients in or run more than the original did (a host name in
// only_from, a tcpd-style deny rule acceptd cannot see), the service is
// written commented out, with the note saying what to fix; disabled
// services are written commented out too, so that enabling one is a
// matter of removing the comment signs. Only lines that cannot be parsed
// at all are [Problem]s.
//
// The package does not validate the result against the host: users,
// groups and programs are written as found. `acceptd check` does that.
// It does check each service as acceptd would anywhere (config.Parse,
// taking every user, group and program as written): one acceptd would
// refuse, such as a redirect to the service's own address, is written
// commented out with acceptd's reason as its note, so the output as a
// whole always loads.
package importer
