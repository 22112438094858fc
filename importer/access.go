package importer

import (
	"net/netip"
	"strconv"
	"strings"
)

// accessList translates the values of xinetd's only_from or no_access
// into CIDRs. all reports a value matching every address (0.0.0.0 or 0).
// unresolved holds the values that name hosts, domains or networks:
// acceptd matches addresses only, and the importer resolves no names.
func accessList(values []string) (prefixes []string, all bool, unresolved []string) {
	for _, v := range values {
		if v == "0" || v == "0.0.0.0" || v == "::" || v == "::/0" || v == "0.0.0.0/0" {
			all = true
			continue
		}
		if v == "localhost" {
			prefixes = append(prefixes, "127.0.0.1", "::1")
			continue
		}
		ps, ok := xinetdAddress(v)
		if !ok {
			unresolved = append(unresolved, v)
			continue
		}
		prefixes = append(prefixes, ps...)
	}
	return dedupe(prefixes), all, unresolved
}

// dedupe drops repeated values, keeping the first of each.
func dedupe(values []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range values {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// xinetdAddress reads one numeric only_from value: an IPv4 address whose
// zero rightmost parts are wildcards (128.138.12.0 is 128.138.12.0/24), a
// factorized address (128.138.{193,194}), an address/prefix, or an IPv6
// address (to which the zero rule does not apply).
func xinetdAddress(v string) ([]string, bool) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, false
		}
		return []string{p.Masked().String()}, true
	}
	if strings.Contains(v, ":") {
		a, err := netip.ParseAddr(v)
		if err != nil || a.Is4In6() {
			return nil, false
		}
		return []string{a.String()}, true
	}
	if i := strings.IndexByte(v, '{'); i >= 0 {
		if !strings.HasSuffix(v, "}") || (i > 0 && v[i-1] != '.') {
			return nil, false
		}
		var out []string
		for _, part := range strings.Split(v[i+1:len(v)-1], ",") {
			ps, ok := ipv4Parts(v[:i] + strings.TrimSpace(part))
			if !ok {
				return nil, false
			}
			out = append(out, ps)
		}
		return out, len(out) > 0
	}
	p, ok := ipv4Parts(v)
	if !ok {
		return nil, false
	}
	return []string{p}, true
}

// ipv4Parts reads 1 to 4 dotted decimal parts; missing parts and zero
// parts on the right are wildcards.
func ipv4Parts(v string) (string, bool) {
	parts := strings.Split(v, ".")
	if len(parts) > 4 {
		return "", false
	}
	var b [4]byte
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || !isDigits(p) || n > 255 {
			return "", false
		}
		b[i] = byte(n)
	}
	bits := 8 * len(parts)
	for bits > 0 && b[bits/8-1] == 0 {
		bits -= 8
	}
	a := netip.AddrFrom4(b)
	if bits == 32 {
		return a.String(), true
	}
	return netip.PrefixFrom(a, bits).String(), true
}

// shadowed lists the allow prefixes that a wider deny prefix contains:
// xinetd lets the better match win, so those clients got in; acceptd
// lets deny win.
func shadowed(allow, deny []string) []string {
	var out []string
	for _, a := range allow {
		ap, err := prefixOf(a)
		if err != nil {
			continue
		}
		for _, d := range deny {
			dp, err := prefixOf(d)
			if err != nil {
				continue
			}
			if dp.Bits() < ap.Bits() && dp.Contains(ap.Addr()) {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

func prefixOf(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
