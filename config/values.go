package config

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
)

// diagf builds an error diagnostic about the text at rng.
func diagf(rng hcl.Range, summary, format string, args ...any) *hcl.Diagnostic {
	r := rng
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  &r,
	}
}

// absent reports whether a required attribute was left out: gohcl has
// already said so, and the zero value must not draw a second message.
func absent(rng hcl.Range) bool { return rng.Filename == "" }

// at formats a range's start as FILE:LINE,COL for the Detail of a
// diagnostic that refers to a second place in the file.
func at(rng hcl.Range) string {
	return fmt.Sprintf("%s:%d,%d", rng.Filename, rng.Start.Line, rng.Start.Column)
}

// duration parses an optional duration written in Go syntax. Absent
// values give def. Negative durations are refused everywhere: every
// duration in the file is a length of time, and "0s" already means "off".
func duration(s *string, rng hcl.Range, name string, def time.Duration) (time.Duration, hcl.Diagnostics) {
	if s == nil {
		return def, nil
	}
	return parseDuration(*s, rng, name)
}

func parseDuration(s string, rng hcl.Range, name string) (time.Duration, hcl.Diagnostics) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, hcl.Diagnostics{diagf(rng, "Invalid duration",
			"%s = %q is not a duration; use Go syntax such as \"500ms\", \"5s\" or \"10m\".", name, s)}
	}
	if d < 0 {
		return 0, hcl.Diagnostics{diagf(rng, "Invalid duration",
			"%s = %q is negative; durations are 0 or more.", name, s)}
	}
	return d, nil
}

// octalMode parses a permission written as an octal string ("0660"). It
// must be a string: a bare number 0660 in HCL is decimal 660, which is
// almost never what was meant, and gohcl has already turned it into the
// string "660", so a leading 0 is required.
func octalMode(s string, rng hcl.Range, name string, maxMode uint64) (uint32, hcl.Diagnostics) {
	bad := hcl.Diagnostics{diagf(rng, "Invalid mode",
		"%s = %q is not an octal mode; write it as a string with a leading zero, such as \"0660\" (at most %#o).", name, s, maxMode)}
	if len(s) < 2 || s[0] != '0' || len(s) > 5 {
		return 0, bad
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > maxMode {
		return 0, bad
	}
	return uint32(n), nil
}

// oneOf checks an optional enumerated string; absent values give def.
func oneOf(s *string, rng hcl.Range, name, def string, allowed ...string) (string, hcl.Diagnostics) {
	if s == nil {
		return def, nil
	}
	for _, a := range allowed {
		if *s == a {
			return a, nil
		}
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	return def, hcl.Diagnostics{diagf(rng, "Invalid value for "+name,
		"%s = %q; want one of %s.", name, *s, strings.Join(quoted, ", "))}
}

// intIn checks an optional integer against an inclusive range; absent
// values give def.
func intIn(v *int, rng hcl.Range, name string, def, lo, hi int) (int, hcl.Diagnostics) {
	if v == nil {
		return def, nil
	}
	if *v < lo || *v > hi {
		if hi >= math.MaxInt32 { // no upper bound worth naming
			return def, hcl.Diagnostics{diagf(rng, "Value out of range",
				"%s = %d; it must be %d or more.", name, *v, lo)}
		}
		return def, hcl.Diagnostics{diagf(rng, "Value out of range",
			"%s = %d; it must be between %d and %d.", name, *v, lo, hi)}
	}
	return *v, nil
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// absPath checks that an optional path is absolute and clean enough to
// be used as is by the child's setup (chdir, chroot).
func absPath(s *string, rng hcl.Range, name string) (string, hcl.Diagnostics) {
	if s == nil {
		return "", nil
	}
	p := *s
	if !filepath.IsAbs(p) || strings.ContainsRune(p, 0) {
		return "", hcl.Diagnostics{diagf(rng, "Invalid path",
			"%s = %q must be an absolute path.", name, p)}
	}
	return filepath.Clean(p), nil
}

// byteSize parses a size in bytes: a number with an optional K, M, G or
// T suffix (powers of 1024, as systemd's MemoryMax= and LimitAS= take).
func byteSize(s string) (uint64, bool) {
	mult := uint64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'K', 'k':
			mult = 1 << 10
		case 'M', 'm':
			mult = 1 << 20
		case 'G', 'g':
			mult = 1 << 30
		case 'T', 't':
			mult = 1 << 40
		}
		if mult != 1 {
			s = s[:len(s)-1]
		}
	}
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > math.MaxUint64/mult {
		return 0, false
	}
	return n * mult, true
}

// typeMismatch reports whether decoding failed only because the value
// has the wrong type, as opposed to using variables or functions, whose
// own messages say more than "wrong type".
func typeMismatch(diags hcl.Diagnostics) bool {
	for _, d := range diags {
		if d.Summary != "Unsuitable value type" {
			return false
		}
	}
	return true
}

// isNull reports whether an optional expression was left out (gohcl then
// gives a null static expression) or written as null.
func isNull(expr hcl.Expression) bool {
	if expr == nil {
		return true
	}
	v, diags := expr.Value(nil)
	return !diags.HasErrors() && v.IsNull()
}

// stringList decodes a list written as a literal, keeping each element's
// range. Numbers are taken as their decimal text, so listen = [31337]
// works as well as listen = ["31337"].
func stringList(expr hcl.Expression, name string) ([]string, []hcl.Range, hcl.Diagnostics) {
	elems, diags := hcl.ExprList(expr)
	if diags.HasErrors() {
		return nil, nil, hcl.Diagnostics{diagf(expr.Range(), "Invalid "+name,
			"%s must be a list written in brackets, such as [\"a\", \"b\"].", name)}
	}
	var out []string
	var ranges []hcl.Range
	for _, e := range elems {
		var s string
		if d := gohcl.DecodeExpression(e, nil, &s); d.HasErrors() {
			if !typeMismatch(d) {
				diags = append(diags, d...)
				continue
			}
			diags = append(diags, diagf(e.Range(), "Invalid "+name,
				"each element of %s must be a string.", name))
			continue
		}
		out = append(out, s)
		ranges = append(ranges, e.Range())
	}
	return out, ranges, diags
}

// prefixList decodes an optional list of CIDRs or bare addresses.
func prefixList(expr hcl.Expression, name string) ([]Prefix, hcl.Diagnostics) {
	if isNull(expr) {
		return nil, nil
	}
	strs, ranges, diags := stringList(expr, name)
	var out []Prefix
	for i, s := range strs {
		p, err := ParsePrefix(s)
		if err != nil {
			diags = append(diags, diagf(ranges[i], "Invalid "+name, "%s.", err.Error()))
			continue
		}
		out = append(out, p)
	}
	return out, diags
}

// environment checks the names of an environment map. Values may be
// anything but NUL, which execve cannot carry.
func environment(env map[string]string, rng hcl.Range) (map[string]string, hcl.Diagnostics) {
	if env == nil {
		return nil, nil
	}
	var diags hcl.Diagnostics
	for _, k := range sortedKeys(env) {
		v := env[k]
		if k == "" || strings.ContainsAny(k, "=\x00") {
			diags = append(diags, diagf(rng, "Invalid environment",
				"variable name %q must be non-empty and contain no '=' or NUL.", k))
		}
		if strings.ContainsRune(v, 0) {
			diags = append(diags, diagf(rng, "Invalid environment",
				"the value of %s contains a NUL byte.", k))
		}
	}
	return env, diags
}
