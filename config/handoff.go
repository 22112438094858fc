package config

import (
	"github.com/hashicorp/hcl/v2"
)

// handoffSocket checks a UNIX socket that connections are handed to: an
// absolute path or an @abstract name (unix:// spelled out is taken too).
func handoffSocket(s string, rng hcl.Range) (string, hcl.Diagnostics) {
	a, err := ParseAddress(s)
	switch {
	case err != nil:
		return "", hcl.Diagnostics{diagf(rng, "Invalid handoff socket", "bad address %q: %s.", s, err)}
	case a.Kind != KindUnix:
		return "", hcl.Diagnostics{diagf(rng, "Invalid handoff socket",
			"socket = %q must be an absolute UNIX socket path or @name.", s)}
	}
	return a.Path, nil
}

func handoff(fh *fileHandoff) (*Handoff, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	h := &Handoff{}
	if fh.Socket != nil {
		var more hcl.Diagnostics
		h.Socket, more = handoffSocket(*fh.Socket, fh.SocketRange)
		diags = append(diags, more...)
	}
	if fh.Socket == nil && len(fh.Routes) == 0 {
		diags = append(diags, diagf(fh.DefRange, "Missing handoff target",
			"a handoff block needs socket = \"...\", at least one route block, or both."))
	}
	seen := map[Prefix]hcl.Range{}
	for _, fr := range fh.Routes {
		p, err := ParsePrefix(fr.Local)
		if absent(fr.LocalRange) {
			// gohcl reported it.
		} else if err != nil {
			diags = append(diags, diagf(fr.LocalRange, "Invalid route", "%s.", err.Error()))
		} else if first, dup := seen[p]; dup {
			diags = append(diags, diagf(fr.LocalRange, "Duplicate route",
				"local = %q is already routed at %s.", fr.Local, at(first)))
		} else {
			seen[p] = fr.LocalRange
		}
		var sock string
		if !absent(fr.SocketRange) {
			var more hcl.Diagnostics
			sock, more = handoffSocket(fr.Socket, fr.SocketRange)
			diags = append(diags, more...)
		}
		h.Routes = append(h.Routes, Route{Local: p, Socket: sock})
	}
	return h, diags
}
