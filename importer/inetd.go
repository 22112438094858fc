package importer

import (
	"fmt"
	"slices"
	"strings"

	"github.com/acceptd/acceptd/config"
)

// Inetd translates inetd.conf files. Each line is
//
//	[HOST:]SERVICE SOCKET-TYPE PROTOCOL wait|nowait[.MAX] USER[:GROUP|.GROUP] PROGRAM [ARGV0 ARG...]
//
// and a line holding only "HOST:" sets the address of the lines after it
// (openbsd-inetd; "*:" resets it). Comment lines are skipped, except
// update-inetd's "#<off># " lines, which are translated and written
// commented out. Lines with too few fields or a bad wait/nowait field are
// Problems.
func Inetd(files []File, opt Options) Result { return inetd(files, opt).result() }

func inetd(files []File, opt Options) *output {
	o := newOutput("inetd", files, opt)
	o.header = append(o.header,
		"acceptd allows 64 concurrent connections per service unless max_connections says otherwise; inetd had no such limit.",
		"inetd's \"tcp\" and \"udp\" are IPv4 only and so are the addresses below (0.0.0.0); \"tcp6\" becomes tcp6://[::], IPv6 only.")
	t := inetdTranslator{o: o, groups: map[string][]*entry{}}
	for _, f := range files {
		t.host = ""
		for i, line := range strings.Split(string(f.Data), "\n") {
			t.line(f.Name, i+1, strings.TrimRight(line, "\r"))
		}
	}
	o.checkServices()
	o.claimListeners()
	return o
}

type inetdTranslator struct {
	o *output
	// host is the default address set by a "HOST:" line.
	host string
	// groups holds the entries translated so far by inetd service name,
	// so that the tcp and tcp6 lines of one service become one service.
	groups map[string][]*entry
}

// inetdLine is one parsed line.
type inetdLine struct {
	host, name, sockType, proto string
	wait                        bool
	max                         []string // the numbers after wait/nowait
	maxSep                      byte     // '.' (BSD, netkit) or '/' (FreeBSD)
	user, group                 string
	program                     string
	argv                        []string
}

func (t *inetdTranslator) line(file string, n int, raw string) {
	text := trim(raw)
	off := false
	switch {
	case text == "":
		return
	case strings.HasPrefix(text, "#<off>#"):
		// update-inetd's way of disabling a service line it manages.
		off = true
		text = trim(strings.TrimPrefix(text, "#<off>#"))
	case strings.HasPrefix(text, "#"):
		return
	}
	if strings.ContainsRune(text, 0) {
		if !off {
			t.o.problem(file, n, "line contains a NUL byte")
		}
		return
	}
	fields := fields(text)
	if len(fields) == 1 && strings.HasSuffix(fields[0], ":") && !off {
		t.host = strings.TrimSuffix(fields[0], ":")
		return
	}
	l, err := parseInetdLine(fields)
	if err != nil {
		if !off {
			t.o.problem(file, n, "%s", err)
		}
		return
	}
	if l.host == "" {
		l.host = t.host
	}
	e := &entry{origin: []string{fmt.Sprintf("%s:%d: %s", file, n, strings.Join(fields, " "))}}
	if off {
		e.disable("disabled by update-inetd (#<off>#).")
	}
	e.svc = t.translate(e, l)
	alt := strings.TrimSuffix(strings.TrimSuffix(l.proto, "46"), "4")
	if e.svc != nil && !e.off && t.merge(l.name, e) {
		return
	}
	t.o.add(e, alt)
	t.groups[l.name] = append(t.groups[l.name], e)
}

func parseInetdLine(f []string) (*inetdLine, error) {
	if len(f) < 6 {
		return nil, fmt.Errorf("want at least 6 fields (service socket-type protocol wait|nowait user program [args]), have %d", len(f))
	}
	l := &inetdLine{name: f[0], sockType: f[1], proto: f[2], program: f[5], argv: f[6:]}
	if !strings.HasPrefix(l.name, "/") {
		if h, name, ok := cutHost(l.name); ok {
			l.host, l.name = h, name
		}
	}
	if l.name == "" {
		return nil, fmt.Errorf("empty service name in %q", f[0])
	}
	waitField := f[3]
	if i := strings.IndexAny(waitField, "./"); i >= 0 {
		l.maxSep = waitField[i]
		l.max = strings.Split(waitField[i+1:], string(l.maxSep))
		waitField = waitField[:i]
		for _, m := range l.max {
			if !isDigits(m) {
				return nil, fmt.Errorf("bad maximum %q in %q: want a number", m, f[3])
			}
		}
	}
	switch waitField {
	case "wait":
		l.wait = true
	case "nowait":
	default:
		return nil, fmt.Errorf("fourth field %q: want wait or nowait, optionally with .MAX", f[3])
	}
	l.user = f[4]
	if u, g, ok := strings.Cut(l.user, ":"); ok {
		l.user, l.group = u, g
	} else if u, g, ok := strings.Cut(l.user, "."); ok {
		l.user, l.group = u, g
	}
	if l.user == "" {
		return nil, fmt.Errorf("empty user in %q", f[4])
	}
	return l, nil
}

// cutHost splits openbsd-inetd's HOST:SERVICE, where HOST may be an IPv6
// address with or without brackets.
func cutHost(s string) (host, name string, ok bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", s, false
	}
	return s[:i], s[i+1:], true
}

// translate turns one line into a service, or nil with a note saying
// why there is none.
func (t *inetdTranslator) translate(e *entry, l *inetdLine) *service {
	proto, fam, ok := inetdProtocol(l.proto)
	if !ok {
		if strings.HasPrefix(l.proto, "rpc/") {
			e.note("RPC services have no acceptd equivalent: they need a portmapper registration, which acceptd does not do.")
		} else {
			e.note("protocol %q has no acceptd equivalent; acceptd serves tcp, udp and unix sockets.", l.proto)
		}
		return nil
	}
	switch {
	case l.sockType == "stream" && proto == "udp", l.sockType == "dgram" && proto != "udp":
		e.note("socket type %q does not go with protocol %q.", l.sockType, l.proto)
		return nil
	case l.sockType != "stream" && l.sockType != "dgram":
		e.note("socket type %q has no acceptd equivalent; acceptd serves stream and datagram sockets.", l.sockType)
		return nil
	}

	s := &service{name: l.name}
	if proto == "unix" {
		if a, err := config.ParseAddress(l.name); err != nil || a.Kind != config.KindUnix {
			e.note("%q is not a UNIX socket path acceptd can listen on.", l.name)
			return nil
		}
		s.listen = []string{l.name}
		s.name = strings.TrimSuffix(l.name[strings.LastIndexByte(l.name, '/')+1:], ".sock")
	} else {
		port, ok := t.o.opt.Services.Port(l.name, proto)
		if !ok {
			e.note("service %q has no %s port in the services table; write the port number instead of the name.", l.name, proto)
			return nil
		}
		host, note, ok := resolveHost(l.host, fam)
		if note != "" {
			e.note("%s", note)
		}
		if !ok {
			e.disable("host %q is not an IP address and names are not resolved; write the address.", l.host)
			host = l.host
		}
		s.listen = []string{listenAddress(proto, fam, host, port)}
	}

	if l.program == "internal" {
		if !builtins[l.name] {
			e.note("inetd's internal %q service has no acceptd builtin (there are echo, discard, daytime, chargen and time).", l.name)
			return nil
		}
		s.builtin = l.name
		if l.user != "root" {
			e.note("builtins run inside acceptd; user %q does not apply.", l.user)
		}
		t.limits(e, s, l, false)
		return s
	}

	s.exec = &execBlock{
		command: serverCommand(e, l.program, l.argv),
		wait:    l.wait,
		user:    l.user,
		group:   l.group,
	}
	if proto == "udp" && !l.wait {
		e.note("nowait on a datagram socket: inetd ran a program per datagram; acceptd hands the socket to one program at a time (accept = false).")
		s.exec.wait = true
	}
	if i := strings.IndexByte(s.exec.group, '/'); i >= 0 {
		e.note("login class %q has no acceptd equivalent.", s.exec.group[i+1:])
		s.exec.group = s.exec.group[:i]
	}
	if i := strings.IndexByte(s.exec.user, '/'); i >= 0 {
		e.note("login class %q has no acceptd equivalent.", s.exec.user[i+1:])
		s.exec.user = s.exec.user[:i]
	}
	t.limits(e, s, l, s.exec.wait)
	return s
}

// limits translates the numbers after wait/nowait.
func (t *inetdTranslator) limits(e *entry, s *service, l *inetdLine, wait bool) {
	if len(l.max) == 0 {
		return
	}
	if wait {
		e.note("%q: acceptd does not accept for a wait-mode service (accept = false), so it has no limit to apply.", strings.Join(l.max, string(l.maxSep)))
		return
	}
	if l.maxSep == '.' {
		// BSD and netkit inetd: at most MAX started per minute, then the
		// service is shut off for ten minutes.
		if n, ok := count(l.max[0]); ok {
			s.rate = &rateLimit{connections: n, interval: "60s"}
			e.note("inetd turned the service off for 10 minutes after %d connections in a minute; acceptd pauses it only until the minute has passed.", n)
		}
		return
	}
	// FreeBSD: nowait/max-child/max-connections-per-ip-per-minute/max-child-per-ip.
	if n, ok := count(l.max[0]); ok {
		s.maxConnections = n
	}
	if len(l.max) > 1 && l.max[1] != "0" {
		e.note("max-connections-per-ip-per-minute %s has no acceptd equivalent (rate_limit counts every client together).", l.max[1])
	}
	if len(l.max) > 2 {
		if n, ok := count(l.max[2]); ok {
			s.maxPerSource = n
		}
	}
	if len(l.max) > 3 {
		e.note("extra numbers after %q ignored.", strings.Join(l.max[:3], "/"))
	}
}

// inetdProtocol maps inetd's protocol field to "tcp", "udp" or "unix"
// and the address family.
func inetdProtocol(p string) (string, family, bool) {
	switch p {
	case "tcp", "tcp4":
		return "tcp", family4, true
	case "tcp6":
		return "tcp", family6, true
	case "tcp46":
		return "tcp", family46, true
	case "udp", "udp4":
		return "udp", family4, true
	case "udp6":
		return "udp", family6, true
	case "udp46":
		return "udp", family46, true
	case "unix":
		return "unix", family4, true
	}
	return "", 0, false
}

// merge adds e's listen address to an earlier service of the same inetd
// name when the two differ in nothing else (the tcp and tcp6 lines of
// one service; TCP and UDP stay apart, for clarity). A program that owns its socket (wait) gets one socket,
// so those are never merged.
func (t *inetdTranslator) merge(name string, e *entry) bool {
	if e.svc.exec != nil && e.svc.exec.wait {
		return false
	}
	for _, p := range t.groups[name] {
		if p.svc == nil || p.off || (p.svc.exec != nil && p.svc.exec.wait) {
			continue
		}
		if !sameExceptListen(p.svc, e.svc) || !slices.Equal(p.notes, e.notes) ||
			isUDP(p.svc.listen[0]) != isUDP(e.svc.listen[0]) ||
			slices.ContainsFunc(e.svc.listen, func(l string) bool { return hasSocket(p.svc.listen, l) }) {
			continue
		}
		p.origin = append(p.origin, e.origin...)
		p.svc.listen = append(p.svc.listen, e.svc.listen...)
		p.svc.listen = bothFamilies(p.svc.listen)
		return true
	}
	return false
}

func isUDP(listen string) bool { return strings.HasPrefix(listen, "udp") }

// hasSocket reports whether one of the addresses in listen is the socket
// l is, however written: after a tcp and a tcp6 line became the bare port
// (bothFamilies), a second tcp6 line's tcp6://[::]:PORT is that socket.
func hasSocket(listen []string, l string) bool {
	a, err := config.ParseAddress(l)
	if err != nil {
		return slices.Contains(listen, l)
	}
	return slices.ContainsFunc(listen, func(m string) bool {
		b, err := config.ParseAddress(m)
		return m == l || err == nil && b.Key() == a.Key()
	})
}

func sameExceptListen(a, b *service) bool {
	x, y := *a, *b
	x.listen, y.listen = nil, nil
	x.name, y.name = "", ""
	return string(x.render()) == string(y.render())
}

// bothFamilies writes an IPv4 and an IPv6-only wildcard socket on one
// port as the one dual-stack socket they amount to.
func bothFamilies(listen []string) []string {
	if len(listen) != 2 {
		return listen
	}
	for _, pair := range [][2]string{{"0.0.0.0:", "tcp6://[::]:"}, {"udp://0.0.0.0:", "udp6://[::]:"}} {
		p4, ok4 := strings.CutPrefix(listen[0], pair[0])
		p6, ok6 := strings.CutPrefix(listen[1], pair[1])
		if ok4 && ok6 && p4 == p6 {
			if pair[0] == "0.0.0.0:" {
				return []string{p4}
			}
			return []string{"udp://[::]:" + p4}
		}
	}
	return listen
}
