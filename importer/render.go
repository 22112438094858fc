package importer

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/acceptd/acceptd/config"
)

// render writes the service block in the order of CONTRACT:
// Configuration, formatted as hclwrite formats it.
func (s *service) render() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "service %s {\n", hclString(s.name))
	attr := func(indent, name, value string) {
		fmt.Fprintf(&b, "%s%s = %s\n", indent, name, value)
	}
	attr("  ", "listen", hclList(s.listen))
	if s.maxConnections > 0 {
		attr("  ", "max_connections", strconv.Itoa(s.maxConnections))
	}
	if s.maxPerSource > 0 {
		attr("  ", "max_connections_per_source", strconv.Itoa(s.maxPerSource))
	}
	if len(s.allow) > 0 {
		attr("  ", "allow", hclList(s.allow))
	}
	if len(s.deny) > 0 {
		attr("  ", "deny", hclList(s.deny))
	}
	if r := s.rate; r != nil {
		b.WriteString("\n  rate_limit {\n")
		attr("    ", "connections", strconv.Itoa(r.connections))
		attr("    ", "interval", hclString(r.interval))
		b.WriteString("  }\n")
	}
	if o := s.socket; o != (socketOptions{}) {
		b.WriteString("\n  socket {\n")
		if o.ipv6Only {
			attr("    ", "ipv6_only", "true")
		}
		if o.keepalive {
			attr("    ", "keepalive", "true")
		}
		if o.noDelay {
			attr("    ", "no_delay", "true")
		}
		b.WriteString("  }\n")
	}
	switch {
	case s.builtin != "":
		attr("  ", "builtin", hclString(s.builtin))
	case s.backend != "":
		b.WriteString("\n  proxy {\n")
		attr("    ", "backend", hclString(s.backend))
		b.WriteString("  }\n")
	case s.exec != nil:
		e := s.exec
		b.WriteString("\n  exec {\n")
		attr("    ", "command", hclList(e.command))
		if e.wait {
			attr("    ", "accept", "false")
		}
		if e.user != "" {
			attr("    ", "user", hclString(e.user))
		}
		if e.group != "" {
			attr("    ", "group", hclString(e.group))
		}
		if len(e.env) > 0 {
			b.WriteString("    environment = {\n")
			for _, kv := range e.env {
				attr("      ", hclKey(kv.key), hclString(kv.value))
			}
			b.WriteString("    }\n")
		}
		if e.umask != "" {
			attr("    ", "umask", hclString(e.umask))
		}
		if len(e.limits) > 0 {
			b.WriteString("    limits {\n")
			for _, kv := range e.limits {
				v := hclString(kv.value)
				if isDigits(kv.value) {
					v = kv.value
				}
				attr("      ", kv.key, v)
			}
			b.WriteString("    }\n")
		}
		b.WriteString("  }\n")
	default:
		panic(fmt.Sprintf("service %q has no mode", s.name))
	}
	b.WriteString("}\n")
	return hclwrite.Format([]byte(b.String()))
}

// hclString and hclList are config's quoting, which every writer of
// acceptd HCL shares.
func hclString(s string) string { return config.Quote(s) }

func hclList(items []string) string { return config.QuoteList(items) }

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// hclKey writes an object key bare when it is an identifier and quoted
// otherwise (environment names may hold any character but '=').
func hclKey(k string) string {
	if identifier.MatchString(k) && k != "null" && k != "true" && k != "false" {
		return k
	}
	return hclString(k)
}
