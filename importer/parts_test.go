package importer

import (
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

func TestParseServices(t *testing.T) {
	s := ParseServices([]byte(`# comment
echo		7/tcp
echo		7/udp
discard		9/tcp		sink null	# trailing comment
broken		x/tcp
noproto		12
http		80/tcp		www
http		8080/tcp
`))
	for _, tc := range []struct {
		name, proto string
		port        int
		ok          bool
	}{
		{"echo", "tcp", 7, true},
		{"echo", "udp", 7, true},
		{"sink", "tcp", 9, true},
		{"null", "tcp", 9, true},
		{"discard", "udp", 0, false},
		{"broken", "tcp", 0, false},
		{"noproto", "tcp", 0, false},
		{"http", "tcp", 80, true}, // the first entry wins
		{"www", "tcp", 80, true},
		{"31337", "tcp", 31337, true},
		{"70000", "tcp", 0, false},
	} {
		port, ok := s.Port(tc.name, tc.proto)
		if port != tc.port || ok != tc.ok {
			t.Errorf("Port(%q, %q) = %d, %v; want %d, %v", tc.name, tc.proto, port, ok, tc.port, tc.ok)
		}
	}
	var none *Services
	if p, ok := none.Port("echo", "tcp"); ok {
		t.Errorf("nil Services resolved echo to %d", p)
	}
	if p, ok := ParseServices([]byte(FallbackServices)).Port("tftp", "udp"); !ok || p != 69 {
		t.Errorf("FallbackServices: tftp/udp = %d, %v; want 69", p, ok)
	}
}

func TestAccessList(t *testing.T) {
	for _, tc := range []struct {
		in         string
		prefixes   string
		all        bool
		unresolved string
	}{
		{"10.0.0.1", "10.0.0.1", false, ""},
		{"128.138.12.0", "128.138.12.0/24", false, ""},
		{"10.0.0.0", "10.0.0.0/8", false, ""},
		{"128.138.{193,194}", "128.138.193.0/24 128.138.194.0/24", false, ""},
		{"10.0.0.{1,2}", "10.0.0.1 10.0.0.2", false, ""},
		{"192.168.1.7/24", "192.168.1.0/24", false, ""},
		{"2001:db8::/32 ::1", "2001:db8::/32 ::1", false, ""},
		{"0.0.0.0", "", true, ""},
		{"0", "", true, ""},
		{"localhost", "127.0.0.1 ::1", false, ""},
		{"host.example.org .example.com mynet", "", false, "host.example.org .example.com mynet"},
		{"10.0.0.1 10.0.0.1", "10.0.0.1", false, ""},
		{"300.1.1.1 1.2.3.4.5 10.{a}", "", false, "300.1.1.1 1.2.3.4.5 10.{a}"},
	} {
		p, all, un := accessList(strings.Fields(tc.in))
		if strings.Join(p, " ") != tc.prefixes || all != tc.all || strings.Join(un, " ") != tc.unresolved {
			t.Errorf("accessList(%q) = %q, %v, %q; want %q, %v, %q", tc.in, p, all, un, tc.prefixes, tc.all, tc.unresolved)
		}
	}
}

func TestShadowed(t *testing.T) {
	got := shadowed([]string{"10.0.0.5", "10.0.0.0/8", "192.168.0.0/16"}, []string{"10.0.0.0/16", "192.168.1.1"})
	if !slices.Equal(got, []string{"10.0.0.5"}) {
		t.Errorf("shadowed = %q; want [10.0.0.5]", got)
	}
}

// TestHCLString checks that every string comes back unchanged from
// HCL, template sequences included.
func TestHCLString(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "${HOME}", "$${x}", "%{if}", "%%{x}",
		"$", "%", "tab\tnewline\ncr\r", "nul\x00", "<html>&", "ünïcode ✓", "\u2028",
		"trailing $", "trailing %", "${", "%{", "$${", "\b\f\x1b\x7f", "a\\${b}",
	} {
		q := hclString(s)
		expr, diags := hclsyntax.ParseExpression([]byte(q), "t.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Errorf("hclString(%q) = %s does not parse: %v", s, q, diags)
			continue
		}
		v, diags := expr.Value(nil)
		if diags.HasErrors() || !v.Type().Equals(cty.String) || v.AsString() != s {
			t.Errorf("hclString(%q) = %s reads back as %#v, %v", s, q, v, diags)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{
		"echo":            "echo",
		"echo-stream":     "echo-stream",
		"/var/run/x.sock": "var-run-x.sock",
		"rpc.rstatd/1-3":  "rpc.rstatd-1-3",
		"///":             "service",
	} {
		if got := sanitizeName(in); got != want {
			t.Errorf("sanitizeName(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestListenAddress(t *testing.T) {
	for _, tc := range []struct {
		proto string
		fam   family
		host  string
		want  string
	}{
		{"tcp", family4, "", "0.0.0.0:7"},
		{"tcp", family6, "", "tcp6://[::]:7"},
		{"tcp", family46, "", "[::]:7"},
		{"udp", family4, "", "udp://0.0.0.0:7"},
		{"udp", family6, "", "udp6://[::]:7"},
		{"udp", family46, "", "udp://[::]:7"},
		{"tcp", family4, "127.0.0.1", "127.0.0.1:7"},
		{"udp", family6, "::1", "udp://[::1]:7"},
	} {
		if got := listenAddress(tc.proto, tc.fam, tc.host, 7); got != tc.want {
			t.Errorf("listenAddress(%s, %d, %q) = %q; want %q", tc.proto, tc.fam, tc.host, got, tc.want)
		}
	}
	if got := bothFamilies([]string{"0.0.0.0:7", "tcp6://[::]:7"}); !slices.Equal(got, []string{"7"}) {
		t.Errorf("bothFamilies(tcp pair) = %q; want [7]", got)
	}
	if got := bothFamilies([]string{"udp://0.0.0.0:7", "udp6://[::]:7"}); !slices.Equal(got, []string{"udp://[::]:7"}) {
		t.Errorf("bothFamilies(udp pair) = %q; want [udp://[::]:7]", got)
	}
}

// TestXinetdOperators checks how defaults and a service's =, += and -=
// combine.
func TestXinetdOperators(t *testing.T) {
	src := `defaults
{
	only_from = 10.0.0.0
	only_from = 10.1.0.0
	instances = 5
}
service a
{
	socket_type = stream
	wait = no
	port = 1000
	type = UNLISTED
	user = root
	server = /bin/cat
	only_from += 10.2.0.0
	only_from -= 10.0.0.0
}
service b
{
	socket_type = stream
	wait = no
	port = 1001
	type = UNLISTED
	user = root
	server = /bin/cat
	only_from = 10.3.0.0
	only_from = 10.4.0.0
	instances = 7
}
`
	o := xinetd([]File{{Name: "x", Data: []byte(src)}}, Options{})
	if len(o.probs) > 0 || len(o.entries) != 2 {
		t.Fatalf("problems %v, %d entries; want none, 2", o.probs, len(o.entries))
	}
	a, b := o.entries[0].svc, o.entries[1].svc
	if !slices.Equal(a.allow, []string{"10.1.0.0/16", "10.2.0.0/16"}) || a.maxConnections != 5 {
		t.Errorf("a: allow %q, max %d; want [10.1.0.0/16 10.2.0.0/16], 5", a.allow, a.maxConnections)
	}
	if !slices.Equal(b.allow, []string{"10.3.0.0/16", "10.4.0.0/16"}) || b.maxConnections != 7 {
		t.Errorf("b: allow %q, max %d; want [10.3.0.0/16 10.4.0.0/16], 7", b.allow, b.maxConnections)
	}
}
