package config

import (
	"math"
	"regexp"
	"slices"

	"github.com/hashicorp/hcl/v2"
)

// serviceName is the charset of service names: they appear in instance
// names (SERVICE@N-...), log fields and metric labels, so no spaces or
// slashes.
var serviceName = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

func (d *decoder) service(fs *fileService) (*Service, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	add := func(more hcl.Diagnostics) { diags = append(diags, more...) }

	s := &Service{
		Name:  fs.Name,
		Range: fs.DefRange,
	}
	if !serviceName.MatchString(fs.Name) {
		add(hcl.Diagnostics{diagf(fs.NameRange, "Invalid service name",
			"service name %q may only contain letters, digits, '_', '.', ':' and '-'.", fs.Name)})
	}

	add(s.decodeListen(fs))

	var more hcl.Diagnostics
	// 64 is systemd's MaxConnections= default.
	s.MaxConnections, more = intIn(fs.MaxConnections, fs.MaxConnectionsRange, "max_connections", 64, 1, math.MaxInt32)
	add(more)
	var overflow string
	overflow, more = oneOf(fs.Overflow, fs.OverflowRange, "overflow", string(OverflowRefuse), string(OverflowRefuse), string(OverflowWait))
	s.Overflow = Overflow(overflow)
	add(more)
	s.MaxConnectionsPerSource, more = intIn(fs.MaxConnectionsPerSource, fs.MaxConnectionsPerSourceRange, "max_connections_per_source", 0, 0, math.MaxInt32)
	add(more)
	s.SourcePrefixV4, more = intIn(fs.SourcePrefixV4, fs.SourcePrefixV4Range, "source_prefix_v4", 32, 0, 32)
	add(more)
	// One IPv6 host usually owns a whole /64, so /64 is one client.
	s.SourcePrefixV6, more = intIn(fs.SourcePrefixV6, fs.SourcePrefixV6Range, "source_prefix_v6", 64, 0, 128)
	add(more)
	s.Allow, more = prefixList(fs.Allow, "allow")
	add(more)
	s.Deny, more = prefixList(fs.Deny, "deny")
	add(more)

	s.AcceptProxyProtocol = boolOr(fs.AcceptProxyProtocol, false)
	s.TrustedProxies, more = prefixList(fs.TrustedProxies, "trusted_proxies")
	add(more)
	if len(s.TrustedProxies) > 0 && !s.AcceptProxyProtocol {
		add(hcl.Diagnostics{diagf(fs.TrustedProxies.Range(), "Useless trusted_proxies",
			"trusted_proxies only applies with accept_proxy_protocol = true.")})
	}

	if rl := fs.RateLimit; rl != nil {
		r := &RateLimit{Connections: rl.Connections}
		if rl.Connections < 1 && !absent(rl.ConnectionsRange) {
			add(hcl.Diagnostics{diagf(rl.ConnectionsRange, "Value out of range",
				"connections = %d; it must be 1 or more.", rl.Connections)})
		}
		if !absent(rl.IntervalRange) {
			r.Interval, more = parseDuration(rl.Interval, rl.IntervalRange, "interval")
			add(more)
		}
		if more == nil && r.Interval == 0 && !absent(rl.IntervalRange) {
			add(hcl.Diagnostics{diagf(rl.IntervalRange, "Invalid duration", "interval must be more than 0s.")})
		}
		s.RateLimit = r
	}

	s.Socket, more = d.socket(fs.Socket)
	add(more)

	add(d.mode(s, fs))
	return s, diags
}

// decodeListen parses the listen list, one diagnostic per bad element.
func (s *Service) decodeListen(fs *fileService) hcl.Diagnostics {
	if isNull(fs.Listen) {
		return hcl.Diagnostics{diagf(fs.DefRange, "Missing listen addresses",
			"service %q needs listen = [...] with at least one address.", fs.Name)}
	}
	strs, ranges, diags := stringList(fs.Listen, "listen")
	if diags.HasErrors() {
		return diags
	}
	if len(strs) == 0 {
		return hcl.Diagnostics{diagf(fs.Listen.Range(), "Missing listen addresses",
			"service %q needs at least one listen address.", fs.Name)}
	}
	for i, raw := range strs {
		a, err := ParseAddress(raw)
		if err != nil {
			diags = append(diags, diagf(ranges[i], "Invalid listen address", "bad address %q: %s.", raw, err))
			continue
		}
		s.Listen = append(s.Listen, Listen{Address: a, Range: ranges[i]})
	}
	return diags
}

// modeBlock is one of the four mutually exclusive ways to serve.
type modeBlock struct {
	mode Mode
	rng  hcl.Range
}

// mode decodes the one mode block of a service. When there are several,
// each one after the first (in file order) is reported, naming where the
// first is, in the manner of gohcl's "Duplicate block" message.
func (d *decoder) mode(s *Service, fs *fileService) hcl.Diagnostics {
	var present []modeBlock
	var diags hcl.Diagnostics
	// dup reports the second and later blocks of one type in gohcl's own
	// words, and returns the first.
	dup := func(typ string, ranges []hcl.Range) {
		for _, r := range ranges[1:] {
			diags = append(diags, diagf(r, "Duplicate "+typ+" block",
				"Only one %s block is allowed. Another was defined at %s.", typ, ranges[0].String()))
		}
	}
	var fe *fileExec
	var fp *fileProxy
	var fh *fileHandoff
	if len(fs.Exec) > 0 {
		fe = fs.Exec[0]
		present = append(present, modeBlock{ModeExec, fe.DefRange})
		dup("exec", rangesOf(fs.Exec, func(b *fileExec) hcl.Range { return b.DefRange }))
	}
	if len(fs.Proxy) > 0 {
		fp = fs.Proxy[0]
		present = append(present, modeBlock{ModeProxy, fp.DefRange})
		dup("proxy", rangesOf(fs.Proxy, func(b *fileProxy) hcl.Range { return b.DefRange }))
	}
	if len(fs.Handoff) > 0 {
		fh = fs.Handoff[0]
		present = append(present, modeBlock{ModeHandoff, fh.DefRange})
		dup("handoff", rangesOf(fs.Handoff, func(b *fileHandoff) hcl.Range { return b.DefRange }))
	}
	if fs.Builtin != nil {
		present = append(present, modeBlock{ModeBuiltin, fs.BuiltinRange})
	}
	if len(present) == 0 {
		return append(diags, diagf(fs.DefRange, "Missing service mode",
			"service %q needs one of an exec, proxy or handoff block, or builtin = \"...\".", fs.Name))
	}
	slices.SortFunc(present, func(a, b modeBlock) int { return a.rng.Start.Byte - b.rng.Start.Byte })

	first := present[0]
	for _, m := range present[1:] {
		diags = append(diags, diagf(m.rng, "Conflicting service modes",
			"service %q already has %s at %s; a service has exactly one of exec, proxy, handoff or builtin.",
			fs.Name, describeMode(first.mode), at(first.rng)))
	}
	s.Mode = first.mode

	// Decode every block present, even the conflicting ones, so that
	// their own mistakes show up in the same run.
	var more hcl.Diagnostics
	if fe != nil {
		var e *Exec
		e, more = d.exec(fe, s)
		diags = append(diags, more...)
		if s.Mode == ModeExec {
			s.Exec = e
		}
	}
	if fp != nil {
		var p *Proxy
		p, more = d.proxy(fp, s)
		diags = append(diags, more...)
		if s.Mode == ModeProxy {
			s.Proxy = p
		}
	}
	if fh != nil {
		var h *Handoff
		h, more = handoff(fh)
		diags = append(diags, more...)
		if s.Mode == ModeHandoff {
			s.Handoff = h
		}
	}
	if fs.Builtin != nil {
		var b string
		b, more = oneOf(fs.Builtin, fs.BuiltinRange, "builtin", "", "echo", "discard", "daytime", "chargen", "time")
		diags = append(diags, more...)
		if s.Mode == ModeBuiltin {
			s.Builtin = b
		}
	}
	return diags
}

func describeMode(m Mode) string {
	switch m {
	case ModeBuiltin:
		return "builtin"
	case ModeExec:
		return "an exec block"
	}
	return "a " + string(m) + " block"
}

func rangesOf[T any](blocks []T, rng func(T) hcl.Range) []hcl.Range {
	out := make([]hcl.Range, len(blocks))
	for i, b := range blocks {
		out[i] = rng(b)
	}
	return out
}
