package config

import (
	"fmt"
	"strings"
)

// Quote quotes s as an HCL string literal, for programs that write
// configuration (acceptd exec, acceptd proxy, acceptd import). HCL knows
// the escapes \n, \r, \t, \", \\ and \uNNNN (not JSON's \b and \f); other
// control characters are written as \uNNNN. "${" and "%{" would start a
// template interpolation or directive, so they are doubled to stay
// literal. Invalid UTF-8 becomes U+FFFD: an HCL file is UTF-8.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < ' ' || r == 0x7f || r == '\u2028' || r == '\u2029':
			fmt.Fprintf(&b, `\u%04x`, r)
		case (r == '$' || r == '%') && strings.HasPrefix(s[i+1:], "{"):
			b.WriteRune(r)
			b.WriteRune(r)
		default:
			b.WriteRune(r) // utf8.RuneError for invalid bytes
		}
	}
	b.WriteByte('"')
	return b.String()
}

// QuoteList writes items as an HCL list of string literals.
func QuoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
