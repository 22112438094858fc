package importer

import (
	"math"
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// family says which address families a socket serves.
type family int

const (
	family4  family = iota // AF_INET: inetd's "tcp", xinetd's default
	family6                // AF_INET6, IPv6 only: inetd's "tcp6"
	family46               // AF_INET6 taking IPv4 too: xinetd's IPv6 flag, FreeBSD's "tcp46"
)

// listenAddress writes a listen address in CONTRACT: Addresses form.
// host is an IP address or "" for every address of the family.
func listenAddress(proto string, fam family, host string, port int) string {
	p := strconv.Itoa(port)
	scheme := ""
	if proto == "udp" {
		scheme = "udp://"
	}
	if host != "" {
		if strings.Contains(host, ":") {
			return scheme + "[" + host + "]:" + p
		}
		return scheme + host + ":" + p
	}
	switch fam {
	case family6:
		// The "6" scheme makes Go set IPV6_V6ONLY, as inetd's tcp6
		// socket serves IPv6 clients only.
		return proto + "6://[::]:" + p
	case family46:
		return scheme + "[::]:" + p
	}
	return scheme + "0.0.0.0:" + p
}

// resolveHost turns a bind address from the input into an IP address
// for listenAddress. "" and "*" mean every address. "localhost" is the
// loopback address of the family (the one host name that needs no
// resolver); other names are not resolved, and ok is false.
func resolveHost(host string, fam family) (ip string, note string, ok bool) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	switch host {
	case "", "*":
		return "", "", true
	case "localhost":
		if fam == family4 {
			return "127.0.0.1", `host "localhost" taken as 127.0.0.1.`, true
		}
		return "::1", `host "localhost" taken as ::1.`, true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "", "", false
	}
	a = a.Unmap()
	if a.IsUnspecified() {
		return "", "", true
	}
	return a.String(), "", true
}

// realDaemonDir is where tcpd looks for a server named without a path:
// REAL_DAEMON_DIR as Debian and most Linux distributions build it.
const realDaemonDir = "/usr/sbin"

// serverCommand turns a program and its arguments, argv[0] first as
// inetd writes them, into an acceptd command, whose first element is the
// program and argv[0] both.
func serverCommand(e *entry, program string, argv []string) []string {
	base := path.Base(program)
	if len(argv) == 0 {
		argv = []string{base}
	}
	switch {
	case base == "tcpd":
		// tcpd checks hosts.allow and hosts.deny, then executes the
		// server its own argv[0] names. acceptd cannot give tcpd an
		// argv[0] of its own, so the server is run directly.
		real := argv[0]
		if !strings.HasPrefix(real, "/") {
			real = path.Join(realDaemonDir, real)
			e.note("tcpd would look for %q in its REAL_DAEMON_DIR; %s assumed, as Debian builds tcpd.", argv[0], realDaemonDir)
		}
		e.note("tcpd unwrapped: %s now runs directly, so /etc/hosts.allow and /etc/hosts.deny no longer apply to this service; write their rules for it as allow and deny.", real)
		return append([]string{real}, argv[1:]...)
	case base == "busybox":
		// A multi-call binary finds its applet in argv[0] or, failing
		// that, in its first argument.
		return append([]string{program}, argv...)
	case argv[0] != base && argv[0] != program:
		e.note("argv[0] was %q; acceptd starts %s with its own path as argv[0].", argv[0], program)
	}
	return append([]string{program}, argv[1:]...)
}

// builtins are the services acceptd implements itself (CONTRACT: builtin).
var builtins = map[string]bool{"echo": true, "discard": true, "daytime": true, "chargen": true, "time": true}

// count parses a positive count as acceptd's limits take it (1 to
// 2147483647); ok is false for anything else.
func count(s string) (int, bool) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 1 || n > math.MaxInt32 {
		return 0, false
	}
	return int(n), true
}

// fields splits a line at blanks and tabs, as inetd, xinetd and
// getservent do; other Unicode spaces are part of a value.
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\v' || r == '\f' })
}

func trim(s string) string { return strings.Trim(s, " \t\r\n\v\f") }
