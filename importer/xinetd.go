package importer

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Xinetd translates xinetd.conf and xinetd.d files: `service NAME { ... }`
// blocks and the `defaults { ... }` block, whose attributes apply to the
// services of every file given. include and includedir are not followed
// (the package reads no files): the files they name are to be given on
// the command line, and a note says so. Lines outside a block that are
// neither of these, attribute lines without an operator and blocks left
// open at the end of a file are Problems.
func Xinetd(files []File, opt Options) Result { return xinetd(files, opt).result() }

func xinetd(files []File, opt Options) *output {
	o := newOutput("xinetd", files, opt)
	o.header = append(o.header,
		"acceptd allows 64 concurrent connections per service unless max_connections says otherwise (xinetd: instances), and limits no rate unless rate_limit says so (xinetd: cps, 50 per second by default).",
		"xinetd's services are IPv4 only unless flagged IPv6, and so are the addresses below (0.0.0.0).",
		"acceptd gives a program its user's supplementary groups; xinetd gave none unless groups = yes.")
	var blocks []*xblock
	for _, f := range files {
		blocks = append(blocks, parseXinetd(o, f)...)
	}
	t := &xinetdTranslator{o: o, noted: map[string]bool{}}
	// defaults apply to every service wherever they are written, as
	// xinetd reads all files before it starts any service.
	t.defaults = attrSet{}
	for _, b := range blocks {
		if b.kind == "defaults" {
			t.defaults.apply(b, true)
		}
	}
	for _, b := range blocks {
		switch b.kind {
		case "defaults":
			for _, a := range b.attrs {
				t.defaultsNote(a)
			}
		case "service":
			t.service(b)
		case "note":
			o.header = append(o.header, b.name)
		}
	}
	o.checkServices()
	o.claimListeners()
	return o
}

// xblock is one block of an xinetd file, or (kind "note") a directive
// that only leaves a note.
type xblock struct {
	kind  string // "service", "defaults" or "note"
	name  string // the service's name, or the note's text
	file  string
	line  int
	attrs []xattr
}

type xattr struct {
	name, op string
	values   []string
	line     int
}

// parseXinetd reads one file into blocks. xinetd wants the opening brace
// on a line of its own; it is accepted at the end of the service line too.
func parseXinetd(o *output, f File) []*xblock {
	var blocks []*xblock
	var cur *xblock
	open := false // cur's '{' has been seen
	// skipping is set after a block without '{': its lines up to the
	// next '}' are dropped with it rather than reported one by one.
	skipping := false
	for i, raw := range strings.Split(string(f.Data), "\n") {
		n := i + 1
		line := trim(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.ContainsRune(line, 0) {
			o.problem(f.Name, n, "line contains a NUL byte")
			continue
		}
		if skipping {
			skipping = line != "}"
			continue
		}
		if cur != nil && !open {
			if line == "{" {
				open = true
				continue
			}
			o.problem(f.Name, cur.line, "%s %s: no '{' on the line after it; block skipped", cur.kind, cur.name)
			cur, skipping = nil, line != "}"
			continue
		}
		if cur == nil {
			fields := fields(line)
			brace := false
			if fields[len(fields)-1] == "{" {
				brace = true
				fields = fields[:len(fields)-1]
			} else if s, ok := strings.CutSuffix(fields[len(fields)-1], "{"); ok {
				brace = true
				fields[len(fields)-1] = s
			}
			switch {
			case len(fields) == 2 && fields[0] == "service":
				cur = &xblock{kind: "service", name: fields[1], file: f.Name, line: n}
			case len(fields) == 1 && fields[0] == "defaults":
				cur = &xblock{kind: "defaults", file: f.Name, line: n}
			case len(fields) == 2 && (fields[0] == "include" || fields[0] == "includedir") && !brace:
				blocks = append(blocks, &xblock{kind: "note", name: fmt.Sprintf(
					"%s:%d: %s %s not followed: give the files it names on the command line too (acceptd import xinetd /etc/xinetd.conf /etc/xinetd.d/*).",
					f.Name, n, fields[0], fields[1])})
				continue
			default:
				o.problem(f.Name, n, "want service NAME, defaults, include FILE or includedir DIR, not %q", line)
				continue
			}
			open = brace
			continue
		}
		if line == "}" {
			blocks = append(blocks, cur)
			cur, open = nil, false
			continue
		}
		a, err := parseXattr(line)
		if err != nil {
			o.problem(f.Name, n, "%s", err)
			continue
		}
		a.line = n
		cur.attrs = append(cur.attrs, a)
	}
	if cur != nil {
		o.problem(f.Name, cur.line, "%s %s has no closing '}'", cur.kind, cur.name)
	}
	return blocks
}

func parseXattr(line string) (xattr, error) {
	i := strings.IndexByte(line, '=')
	if i < 0 {
		return xattr{}, fmt.Errorf("want ATTRIBUTE = VALUE..., not %q", line)
	}
	a := xattr{op: "=", values: fields(line[i+1:])}
	name := line[:i]
	if strings.HasSuffix(name, "+") || strings.HasSuffix(name, "-") {
		a.op = name[len(name)-1:] + "="
		name = name[:len(name)-1]
	}
	a.name = trim(name)
	if a.name == "" || strings.ContainsAny(a.name, " \t") {
		return xattr{}, fmt.Errorf("want ATTRIBUTE = VALUE..., not %q", line)
	}
	return a, nil
}

// listAttrs take += and -= and accumulate when given more than once
// (xinetd.conf(5)).
var listAttrs = map[string]bool{
	"only_from": true, "no_access": true, "log_on_success": true, "log_on_failure": true,
	"passenv": true, "env": true, "log_type": true, "disabled": true, "enabled": true,
}

// value is an attribute's effective value for one service.
type value struct {
	values []string
	line   int
	// inherited is set when the value comes from the defaults block
	// alone.
	inherited bool
}

type attrSet map[string]*value

// apply adds a block's attributes to the set. In defaults, '=' on a list
// attribute accumulates; in a service, the first '=' replaces what the
// defaults gave and later ones accumulate.
func (s attrSet) apply(b *xblock, defaults bool) {
	seen := map[string]bool{}
	for _, a := range b.attrs {
		cur := s[a.name]
		switch {
		case a.op == "=" && (!listAttrs[a.name] || (!defaults && !seen[a.name])) || cur == nil:
			cur = &value{}
			if a.op != "-=" {
				cur.values = slices.Clone(a.values)
			}
		case a.op == "-=":
			cur.values = slices.DeleteFunc(slices.Clone(cur.values), func(v string) bool { return slices.Contains(a.values, v) })
		default:
			cur.values = append(slices.Clone(cur.values), a.values...)
		}
		cur.line, cur.inherited = a.line, defaults
		s[a.name] = cur
		seen[a.name] = true
	}
}

type xinetdTranslator struct {
	o        *output
	defaults attrSet
	noted    map[string]bool // header notes already given
}

// headerNote notes something about the defaults block once.
func (t *xinetdTranslator) headerNote(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !t.noted[msg] {
		t.noted[msg] = true
		t.o.header = append(t.o.header, msg)
	}
}

// defaultsNote says what becomes of one attribute of the defaults block.
func (t *xinetdTranslator) defaultsNote(a xattr) {
	switch a.name {
	case "instances", "per_source", "cps", "only_from", "no_access", "bind", "interface", "umask", "groups", "disabled", "enabled", "v6only":
		return // applied to every service below
	}
	if msg := unsupported(a.name, a.values); msg != "" {
		t.headerNote("defaults: %s", msg)
		return
	}
	t.headerNote("defaults: %s = %s applies to no acceptd setting.", a.name, strings.Join(a.values, " "))
}

// unsupported returns the note for an attribute acceptd has no
// equivalent for, or "".
func unsupported(name string, values []string) string {
	v := strings.Join(values, " ")
	switch name {
	case "log_type", "log_on_success", "log_on_failure":
		return "log_type, log_on_success and log_on_failure have no equivalent: acceptd logs every connection once when it ends (service, instance, remote and local address, pid, uid, exit status, duration) to its own log."
	case "nice":
		return fmt.Sprintf("nice = %s has no equivalent; put /usr/bin/nice -n %s in front of the command, or run acceptd with Nice=.", v, v)
	case "rlimit_rss":
		return "rlimit_rss has no equivalent (Linux ignores RLIMIT_RSS); memory_max limits an instance's memory."
	case "banner", "banner_success", "banner_fail":
		return fmt.Sprintf("%s = %s has no equivalent: acceptd sends nothing of its own on a connection.", name, v)
	case "access_times":
		return fmt.Sprintf("access_times = %s has no equivalent: acceptd serves at all times.", v)
	case "deny_time":
		return fmt.Sprintf("deny_time = %s has no equivalent (it belongs to the SENSOR flag).", v)
	case "mdns":
		return "mdns has no equivalent: acceptd registers nothing with mDNS."
	case "libwrap":
		return fmt.Sprintf("libwrap = %s: acceptd does not consult /etc/hosts.allow and /etc/hosts.deny; write their rules as allow and deny.", v)
	case "max_load":
		return fmt.Sprintf("max_load = %s has no equivalent: acceptd does not watch the load average.", v)
	case "passenv":
		return fmt.Sprintf("passenv = %s: a program gets nothing of acceptd's own environment; add the variables with their values to environment.", v)
	}
	return ""
}

func (t *xinetdTranslator) service(b *xblock) {
	attrs := attrSet{}
	for k, v := range t.defaults {
		c := *v
		attrs[k] = &c
	}
	attrs.apply(b, false)
	get := func(name string) []string {
		if v := attrs[name]; v != nil {
			return v.values
		}
		return nil
	}
	first := func(name string) string {
		if v := get(name); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	has := func(name string) bool { return attrs[name] != nil }

	id := b.name
	if v := first("id"); v != "" {
		id = v
	}
	head := fmt.Sprintf("%s:%d: service %s", b.file, b.line, b.name)
	if id != b.name {
		head += " (id " + id + ")"
	}
	e := &entry{origin: []string{head}}
	// note attaches a note about an attribute to this service, unless
	// the defaults block gave it: that note is in the header already.
	note := func(name, format string, args ...any) {
		if v := attrs[name]; v != nil && v.inherited {
			return
		}
		e.note(format, args...)
	}

	types := get("type")
	flags := get("flags")
	proto := first("protocol")
	switch first("socket_type") {
	case "stream":
		if proto == "" {
			proto = "tcp"
		}
	case "dgram":
		if proto == "" {
			proto = "udp"
		}
	case "":
		e.note("no socket_type; xinetd would refuse this service.")
	default:
		e.note("socket_type = %s has no acceptd equivalent; acceptd serves stream and datagram sockets.", first("socket_type"))
	}
	if want := map[string]string{"stream": "tcp", "dgram": "udp"}[first("socket_type")]; want != "" && proto != want {
		e.note("protocol = %s with socket_type = %s has no acceptd equivalent.", proto, first("socket_type"))
		proto = ""
	}
	for _, ty := range types {
		if ty == "RPC" || ty == "TCPMUX" || ty == "TCPMUXPLUS" {
			e.note("type %s has no acceptd equivalent.", ty)
			proto = ""
		}
	}
	if slices.Contains(flags, "SENSOR") {
		e.note("the SENSOR flag has no acceptd equivalent.")
		proto = ""
	}
	if proto == "" {
		t.o.add(e, "")
		return
	}

	// The socket.
	var port int
	if p := first("port"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			e.note("port = %s is not a port number.", p)
			t.o.add(e, "")
			return
		}
		port = n
		if listed, ok := t.o.opt.Services.Port(b.name, proto); ok && listed != n && !slices.Contains(types, "UNLISTED") {
			e.note("port = %d differs from the services table (%d), which xinetd refuses; %d used.", n, listed, n)
		}
	} else {
		n, ok := t.o.opt.Services.Port(b.name, proto)
		if !ok || slices.Contains(types, "UNLISTED") {
			e.note("no port, and service %q has no %s port in the services table; add port = N.", b.name, proto)
			t.o.add(e, "")
			return
		}
		port = n
	}
	fam := family4
	if slices.Contains(flags, "IPv6") {
		fam = family46
	}
	bind := first("bind")
	if bind == "" {
		bind = first("interface")
	}
	s := &service{name: id}
	e.svc = s
	host, hostNote, ok := resolveHost(bind, fam)
	if hostNote != "" {
		e.note("%s", hostNote)
	}
	if !ok {
		e.disable("bind = %s is not an IP address and names are not resolved; write the address.", bind)
		host = bind
	}
	if strings.Contains(host, ":") {
		fam = family46
	}
	s.listen = []string{listenAddress(proto, fam, host, port)}
	if v := first("v6only"); v == "yes" && fam == family46 {
		s.socket.ipv6Only = true
	}
	for _, f := range flags {
		switch f {
		case "KEEPALIVE":
			s.socket.keepalive = proto == "tcp"
		case "NODELAY":
			s.socket.noDelay = proto == "tcp"
		case "IPv4", "IPv6", "REUSE", "NOLIBWRAP", "NAMEINARGS":
			// IPv4/IPv6 chose the address; REUSE is always on in xinetd
			// and in Go (SO_REUSEADDR); NOLIBWRAP is acceptd's only way.
		case "INTERCEPT", "NORETRY", "IDONLY", "LABELED":
			note("flags", "flag %s has no acceptd equivalent.", f)
		default:
			note("flags", "unknown flag %s ignored.", f)
		}
	}

	// What serves the connections.
	wait := first("wait") == "yes"
	switch {
	case slices.Contains(types, "INTERNAL"):
		if !builtins[b.name] {
			e.note("xinetd's internal %q service has no acceptd builtin (there are echo, discard, daytime, chargen and time).", b.name)
			e.svc = nil
			t.o.add(e, "")
			return
		}
		s.builtin = b.name
	case has("redirect"):
		r := get("redirect")
		if proto != "tcp" || len(r) != 2 {
			e.note("redirect = %s: want an address and a port, on a tcp service.", strings.Join(r, " "))
			e.svc = nil
			t.o.add(e, "")
			return
		}
		port, pok := t.o.opt.Services.Port(r[1], "tcp")
		if !pok || port < 1 {
			e.note("redirect = %s: %q is not a port acceptd can connect to.", strings.Join(r, " "), r[1])
			e.svc = nil
			t.o.add(e, "")
			return
		}
		backend, _, ok := resolveHost(r[0], family46)
		switch {
		case !ok:
			e.disable("redirect to %s: names are not resolved; write the address.", r[0])
			backend = r[0]
		case backend == "":
			e.disable("redirect to %s: a wildcard address, which connect() takes as this host; written as 127.0.0.1, check it.", r[0])
			backend = "127.0.0.1"
		}
		if strings.Contains(backend, ":") {
			backend = "[" + backend + "]"
		}
		s.backend = backend + ":" + strconv.Itoa(port)
		if has("server") {
			e.note("server = %s ignored: redirect takes priority, as in xinetd.", first("server"))
		}
	case first("server") != "":
		argv := append([]string{first("server")[strings.LastIndexByte(first("server"), '/')+1:]}, get("server_args")...)
		if slices.Contains(flags, "NAMEINARGS") {
			argv = get("server_args")
		}
		s.exec = &execBlock{
			command: serverCommand(e, first("server"), argv),
			wait:    wait,
			user:    first("user"),
			group:   first("group"),
		}
		if !has("wait") {
			e.note("no wait attribute; xinetd would refuse this service (taken as wait = no).")
		}
		if proto == "udp" && !wait {
			e.note("wait = no on a datagram socket: acceptd hands the socket to one program at a time (accept = false).")
			s.exec.wait = true
		}
		t.execAttrs(e, s.exec, attrs, note)
	default:
		if has("server") {
			// "server =" with nothing after it: no program to run.
			e.note("server has no value; xinetd would refuse this service.")
		} else {
			e.note("no server, redirect or type = INTERNAL; xinetd would refuse this service.")
		}
		e.svc = nil
		t.o.add(e, "")
		return
	}
	if s.exec == nil {
		for _, name := range []string{"env", "passenv", "umask", "nice", "rlimit_as", "rlimit_cpu", "rlimit_data", "rlimit_rss", "rlimit_stack", "rlimit_files", "server_args"} {
			if v := attrs[name]; v != nil && !v.inherited {
				e.note("%s applies to a program; this service runs none.", name)
			}
		}
	}
	waitMode := s.exec != nil && s.exec.wait

	// Limits.
	if v := first("instances"); v != "" {
		switch {
		case waitMode:
			note("instances", "instances = %s: a wait-mode service has one program; nothing to limit.", v)
		case v == "UNLIMITED":
			s.maxConnections = 1000000
			note("instances", "instances = UNLIMITED: acceptd needs a number; this one is far above what the host's processes and file descriptors allow.")
		default:
			if n, ok := count(v); ok {
				s.maxConnections = n
			} else {
				note("instances", "instances = %s is not a number; ignored.", v)
			}
		}
	}
	if v := first("per_source"); v != "" && v != "UNLIMITED" {
		n, ok := count(v)
		switch {
		case waitMode:
			note("per_source", "per_source = %s: acceptd does not see the clients of a wait-mode service.", v)
		case ok:
			s.maxPerSource = n
		default:
			note("per_source", "per_source = %s is not a number; ignored.", v)
		}
	}
	if v := get("cps"); len(v) > 0 {
		n, ok := count(v[0])
		switch {
		case waitMode:
			note("cps", "cps = %s: acceptd does not accept for a wait-mode service; nothing to limit.", strings.Join(v, " "))
		case !ok:
			note("cps", "cps = %s is not a number; ignored.", strings.Join(v, " "))
		default:
			s.rate = &rateLimit{connections: n, interval: "1s"}
			if len(v) > 1 {
				e.note("cps = %s: xinetd turned the service off for %s seconds beyond the rate; acceptd pauses it only until the second has passed.", strings.Join(v, " "), v[1])
			}
		}
	}

	// Access control. Where the translation would let in a client xinetd
	// kept out, the service is written commented out.
	t.access(e, s, attrs, waitMode)

	// Enabled or not.
	if first("disable") == "yes" {
		e.disable("disabled in xinetd (disable = yes).")
	} else if slices.Contains(get("disabled"), id) {
		e.disable("disabled in xinetd (listed in the defaults' disabled).")
	} else if has("enabled") && !slices.Contains(get("enabled"), id) {
		e.disable("disabled in xinetd (not listed in the defaults' enabled).")
	}

	// Everything else has no equivalent.
	for _, name := range sortedAttrNames(attrs) {
		if known[name] {
			continue
		}
		msg := unsupported(name, get(name))
		if msg == "" {
			msg = fmt.Sprintf("unknown attribute %s ignored.", name)
		}
		note(name, "%s", msg)
	}
	if v := first("groups"); v == "no" {
		note("groups", "groups = no: acceptd gives a program its user's supplementary groups.")
	}
	alt := ""
	if id == b.name {
		alt = proto // a second "echo" for udp becomes "echo-udp"
	}
	t.o.add(e, alt)
}

// known are the attributes service handles itself; the others get the
// note unsupported has for them.
var known = map[string]bool{
	"id": true, "type": true, "flags": true, "socket_type": true, "protocol": true, "wait": true,
	"user": true, "group": true, "server": true, "server_args": true, "port": true, "bind": true,
	"interface": true, "only_from": true, "no_access": true, "instances": true, "per_source": true,
	"cps": true, "env": true, "umask": true, "groups": true, "disable": true, "disabled": true,
	"enabled": true, "redirect": true, "v6only": true, "rlimit_as": true, "rlimit_cpu": true,
	"rlimit_data": true, "rlimit_stack": true, "rlimit_files": true,
	"rpc_version": true, "rpc_number": true,
}

func sortedAttrNames(attrs attrSet) []string {
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// execAttrs translates the attributes of the program a service runs.
func (t *xinetdTranslator) execAttrs(e *entry, x *execBlock, attrs attrSet, note func(name, format string, args ...any)) {
	if v := attrs["env"]; v != nil {
		for _, kv := range v.values {
			k, val, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				note("env", "env value %q is not NAME=VALUE; ignored.", kv)
				continue
			}
			x.env = slices.DeleteFunc(x.env, func(p keyValue) bool { return p.key == k })
			x.env = append(x.env, keyValue{k, val})
		}
	}
	if v := attrs["umask"]; v != nil && len(v.values) > 0 {
		n, err := strconv.ParseUint(v.values[0], 8, 32)
		if err != nil || n > 0o777 {
			note("umask", "umask = %s is not an octal mode; ignored.", v.values[0])
		} else {
			x.umask = fmt.Sprintf("%04o", n)
		}
	}
	for _, l := range []struct{ attr, limit string }{
		{"rlimit_as", "as"}, {"rlimit_cpu", "cpu"}, {"rlimit_data", "data"},
		{"rlimit_stack", "stack"}, {"rlimit_files", "nofile"},
	} {
		v := attrs[l.attr]
		if v == nil || len(v.values) == 0 {
			continue
		}
		val := v.values[0]
		if val == "UNLIMITED" {
			val = "infinity"
		}
		if val != "infinity" && !validLimit(val, l.limit != "cpu" && l.limit != "nofile") {
			note(l.attr, "%s = %s is not a number; ignored.", l.attr, v.values[0])
			continue
		}
		x.limits = append(x.limits, keyValue{l.limit, val})
	}
}

// validLimit checks a limit as acceptd's limits block reads it: digits,
// with a K, M, G or T suffix for sizes.
func validLimit(s string, size bool) bool {
	shift := 0
	if size && len(s) > 1 {
		if i := strings.IndexByte("KMGT", s[len(s)-1]&^0x20); i >= 0 && s[len(s)-1] >= 'A' {
			shift = 10 * (i + 1)
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return isDigits(s) && err == nil && n <= math.MaxUint64>>shift
}

// access translates only_from and no_access.
func (t *xinetdTranslator) access(e *entry, s *service, attrs attrSet, waitMode bool) {
	from, deny := attrs["only_from"], attrs["no_access"]
	if from == nil && deny == nil {
		return
	}
	if waitMode {
		e.disable("only_from and no_access cannot be kept: in wait mode the program accepts its clients itself, and acceptd does not see them.")
		return
	}
	if from != nil {
		prefixes, all, unresolved := accessList(from.values)
		switch {
		case len(from.values) == 0:
			e.disable("only_from with no value lets nobody in.")
		case all:
			// Everyone: no allow list.
		case len(unresolved) > 0 && len(prefixes) == 0:
			e.disable("only_from = %s names hosts or networks; acceptd matches addresses and names are not resolved: write them as allow.", strings.Join(unresolved, " "))
		default:
			s.allow = prefixes
			if len(unresolved) > 0 {
				e.note("only_from %s left out: names are not resolved, so those clients are refused; add their addresses to allow.", strings.Join(unresolved, " "))
			}
		}
	}
	if deny != nil {
		prefixes, all, unresolved := accessList(deny.values)
		if all {
			prefixes = []string{"0.0.0.0/0", "::/0"}
		}
		s.deny = prefixes
		if len(unresolved) > 0 {
			e.disable("no_access = %s names hosts or networks; acceptd matches addresses and names are not resolved: write them as deny.", strings.Join(unresolved, " "))
		}
	}
	if sh := shadowed(s.allow, s.deny); len(sh) > 0 {
		e.note("xinetd let the better match of only_from and no_access decide; acceptd lets deny win, so %s, allowed by xinetd, is refused.", strings.Join(sh, ", "))
	}
}
