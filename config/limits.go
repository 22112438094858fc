package config

import (
	"math"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"golang.org/x/sys/unix"
)

// rlimitInfinity is RLIM_INFINITY on Linux.
const rlimitInfinity = math.MaxUint64

// rlimitKind says how a limit's number reads.
type rlimitKind int

const (
	rlimitCount rlimitKind = iota // a plain count
	rlimitBytes                   // bytes, K/M/G/T suffixes allowed
)

// rlimits maps the names of the limits block to setrlimit resources,
// named as systemd's Limit*= settings are, lower case.
var rlimits = map[string]struct {
	resource int
	kind     rlimitKind
}{
	"as":         {unix.RLIMIT_AS, rlimitBytes},
	"core":       {unix.RLIMIT_CORE, rlimitBytes},
	"cpu":        {unix.RLIMIT_CPU, rlimitCount}, // seconds
	"data":       {unix.RLIMIT_DATA, rlimitBytes},
	"fsize":      {unix.RLIMIT_FSIZE, rlimitBytes},
	"locks":      {unix.RLIMIT_LOCKS, rlimitCount},
	"memlock":    {unix.RLIMIT_MEMLOCK, rlimitBytes},
	"msgqueue":   {unix.RLIMIT_MSGQUEUE, rlimitBytes},
	"nice":       {unix.RLIMIT_NICE, rlimitCount}, // raw 0..40, as setrlimit takes it
	"nofile":     {unix.RLIMIT_NOFILE, rlimitCount},
	"nproc":      {unix.RLIMIT_NPROC, rlimitCount},
	"rtprio":     {unix.RLIMIT_RTPRIO, rlimitCount},
	"rttime":     {unix.RLIMIT_RTTIME, rlimitCount}, // microseconds
	"sigpending": {unix.RLIMIT_SIGPENDING, rlimitCount},
	"stack":      {unix.RLIMIT_STACK, rlimitBytes},
}

// limits decodes the limits block. Each value is a number (both soft and
// hard limit), "infinity", or "SOFT:HARD" with soft <= hard.
func limits(fl *fileLimits) ([]Rlimit, hcl.Diagnostics) {
	attrs, diags := fl.Body.JustAttributes()
	names := sortedKeys(attrs)
	// Report in file order, and return the limits in file order too.
	slices.SortFunc(names, func(a, b string) int {
		return attrs[a].Range.Start.Byte - attrs[b].Range.Start.Byte
	})
	var out []Rlimit
	for _, name := range names {
		attr := attrs[name]
		info, ok := rlimits[name]
		if !ok {
			diags = append(diags, diagf(attr.NameRange, "Unknown limit",
				"%q is not a resource limit; known are %s.", name, strings.Join(sortedKeys(rlimits), ", ")))
			continue
		}
		var s string
		if d := gohcl.DecodeExpression(attr.Expr, nil, &s); d.HasErrors() {
			diags = append(diags, diagf(attr.Expr.Range(), "Invalid limit",
				"%s must be a number, \"infinity\" or \"SOFT:HARD\".", name))
			continue
		}
		cur, hardLimit, ok := parseRlimit(s, info.kind)
		if !ok {
			diags = append(diags, diagf(attr.Expr.Range(), "Invalid limit",
				"%s = %q; want a number, \"infinity\" or \"SOFT:HARD\" with SOFT <= HARD.", name, s))
			continue
		}
		out = append(out, Rlimit{Name: name, Resource: info.resource, Cur: cur, Max: hardLimit})
	}
	return out, diags
}

func parseRlimit(s string, kind rlimitKind) (cur, hardLimit uint64, ok bool) {
	one := func(v string) (uint64, bool) {
		if v == "infinity" {
			return rlimitInfinity, true
		}
		if kind == rlimitBytes {
			return byteSize(v)
		}
		if !isDigits(v) {
			return 0, false
		}
		n, ok := byteSize(v)
		return n, ok
	}
	soft, hard, pair := strings.Cut(s, ":")
	if !pair {
		v, ok := one(s)
		return v, v, ok
	}
	cur, ok1 := one(soft)
	hardLimit, ok2 := one(hard)
	if !ok1 || !ok2 || cur > hardLimit {
		return 0, 0, false
	}
	return cur, hardLimit, true
}
