package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	long := "/" + strings.Repeat("x", 106) // 107 bytes: the longest path
	tests := []struct {
		in                   string
		kind                 Kind
		network, host        string
		port                 int
		path, name           string
		fd                   int
		str, listenAddr, key string
	}{
		{in: "31337", kind: KindTCP, network: "tcp", port: 31337, str: "[::]:31337", listenAddr: ":31337", key: "tcp [::]:31337"},
		{in: ":31337", kind: KindTCP, network: "tcp", port: 31337, str: "[::]:31337", listenAddr: ":31337", key: "tcp [::]:31337"},
		{in: "[::]:31337", kind: KindTCP, network: "tcp", host: "::", port: 31337, str: "[::]:31337", listenAddr: "[::]:31337", key: "tcp [::]:31337"},
		{in: "0.0.0.0:31337", kind: KindTCP, network: "tcp4", host: "0.0.0.0", port: 31337, str: "0.0.0.0:31337", listenAddr: "0.0.0.0:31337", key: "tcp 0.0.0.0:31337"},
		{in: "127.0.0.1:8000", kind: KindTCP, network: "tcp", host: "127.0.0.1", port: 8000, str: "127.0.0.1:8000", listenAddr: "127.0.0.1:8000", key: "tcp 127.0.0.1:8000"},
		{in: "[::1]:8000", kind: KindTCP, network: "tcp", host: "::1", port: 8000, str: "[::1]:8000", listenAddr: "[::1]:8000", key: "tcp [::1]:8000"},
		{in: "[::ffff:127.0.0.1]:8000", kind: KindTCP, network: "tcp", host: "127.0.0.1", port: 8000, str: "127.0.0.1:8000", listenAddr: "127.0.0.1:8000", key: "tcp 127.0.0.1:8000"},
		{in: "tcp://127.0.0.1:8000", kind: KindTCP, network: "tcp", host: "127.0.0.1", port: 8000, str: "127.0.0.1:8000", listenAddr: "127.0.0.1:8000", key: "tcp 127.0.0.1:8000"},
		{in: "tcp://:1", kind: KindTCP, network: "tcp", port: 1, str: "[::]:1", listenAddr: ":1", key: "tcp [::]:1"},
		{in: "tcp4://0.0.0.0:80", kind: KindTCP, network: "tcp4", host: "0.0.0.0", port: 80, str: "0.0.0.0:80", listenAddr: "0.0.0.0:80", key: "tcp 0.0.0.0:80"},
		{in: "tcp4://:80", kind: KindTCP, network: "tcp4", port: 80, str: "0.0.0.0:80", listenAddr: ":80", key: "tcp 0.0.0.0:80"},
		{in: "tcp6://[::]:65535", kind: KindTCP, network: "tcp6", host: "::", port: 65535, str: "[::]:65535", listenAddr: "[::]:65535", key: "tcp [::]:65535"},
		{in: "tcp6://[fe80::1%eth0]:22", kind: KindTCP, network: "tcp6", host: "fe80::1%eth0", port: 22, str: "[fe80::1%eth0]:22", listenAddr: "[fe80::1%eth0]:22", key: "tcp [fe80::1%eth0]:22"},
		{in: "/run/x.sock", kind: KindUnix, network: "unix", path: "/run/x.sock", str: "/run/x.sock", listenAddr: "/run/x.sock", key: "unix /run/x.sock"},
		{in: "unix:///run/x.sock", kind: KindUnix, network: "unix", path: "/run/x.sock", str: "/run/x.sock", listenAddr: "/run/x.sock", key: "unix /run/x.sock"},
		{in: long, kind: KindUnix, network: "unix", path: long, str: long, listenAddr: long, key: "unix " + long},
		{in: "@name", kind: KindUnix, network: "unix", path: "@name", str: "@name", listenAddr: "@name", key: "unix @name"},
		{in: "unix://@name", kind: KindUnix, network: "unix", path: "@name", str: "@name", listenAddr: "@name", key: "unix @name"},
		{in: "udp://127.0.0.1:6969", kind: KindUDP, network: "udp", host: "127.0.0.1", port: 6969, str: "127.0.0.1:6969", listenAddr: "127.0.0.1:6969", key: "udp 127.0.0.1:6969"},
		{in: "udp4://:53", kind: KindUDP, network: "udp4", port: 53, str: "0.0.0.0:53", listenAddr: ":53", key: "udp 0.0.0.0:53"},
		{in: "udp6://[::1]:53", kind: KindUDP, network: "udp6", host: "::1", port: 53, str: "[::1]:53", listenAddr: "[::1]:53", key: "udp [::1]:53"},
		{in: "handoff:/run/c/accept.sock", kind: KindHandoff, network: "unix", path: "/run/c/accept.sock", str: "handoff:/run/c/accept.sock", listenAddr: "/run/c/accept.sock", key: "unix /run/c/accept.sock"},
		{in: "handoff:@acc", kind: KindHandoff, network: "unix", path: "@acc", str: "handoff:@acc", listenAddr: "@acc", key: "unix @acc"},
		{in: "systemd:web", kind: KindSystemd, name: "web", str: "systemd:web", key: "systemd:web"},
		{in: "0", kind: KindTCP, network: "tcp", port: 0, str: "[::]:0", listenAddr: ":0", key: "tcp [::]:0"},
		{in: "127.0.0.1:0", kind: KindTCP, network: "tcp", host: "127.0.0.1", str: "127.0.0.1:0", listenAddr: "127.0.0.1:0", key: "tcp 127.0.0.1:0"},
		{in: "fd:3", kind: KindFD, fd: 3, str: "fd:3", key: "fd:3"},
		{in: "fd:42", kind: KindFD, fd: 42, str: "fd:42", key: "fd:42"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := ParseAddress(tt.in)
			if err != nil {
				t.Fatalf("ParseAddress(%q) error: %v", tt.in, err)
			}
			want := Address{Raw: tt.in, Kind: tt.kind, Network: tt.network, Host: tt.host, Port: tt.port, Path: tt.path, Name: tt.name, FD: tt.fd}
			if a != want {
				t.Errorf("ParseAddress(%q) = %+v; want %+v", tt.in, a, want)
			}
			if got := a.String(); got != tt.str {
				t.Errorf("String() = %q; want %q", got, tt.str)
			}
			if got := a.ListenAddr(); got != tt.listenAddr {
				t.Errorf("ListenAddr() = %q; want %q", got, tt.listenAddr)
			}
			if got := a.Key(); got != tt.key {
				t.Errorf("Key() = %q; want %q", got, tt.key)
			}
			if got, want := a.Abstract(), strings.HasPrefix(tt.path, "@"); got != want {
				t.Errorf("Abstract() = %v; want %v", got, want)
			}
		})
	}
}

func TestParseAddressErrors(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"", "empty address"},
		{" 80", "leading or trailing space"},
		{"80 ", "leading or trailing space"},
		{"65536", "port 65536 out of range 0-65535"},
		{"99999999999999999999", "out of range"},
		{":-0", "is not a number"},
		{"127.0.0.1:", "missing port"},
		{"127.0.0.1:http", `port "http" is not a number`},
		{"127.0.0.1:-1", `port "-1" is not a number`},
		{"127.0.0.1:+80", `port "+80" is not a number`},
		{"localhost:80", "is not an IP address"},
		{"::1:80", "IPv6 address must be in brackets"},
		{"[::1]", "missing port after ']'"},
		{"[::1:80", "missing ']'"},
		{"[]:80", "empty host in brackets"},
		{"[127.0.0.1%eth0]:80", "is not an IP address"},
		{"tcp4://[::1]:80", "needs an IPv4 address"},
		{"tcp6://127.0.0.1:80", "needs an IPv6 address"},
		{"udp4://[::]:53", "needs an IPv4 address"},
		{"http://127.0.0.1:80", `unknown scheme "http"`},
		{"tcp://", "missing port"},
		{"tcp://127.0.0.1", "missing port"},
		{"unix://", "empty UNIX socket path"},
		{"unix://run/x.sock", "must be absolute"},
		{"@", "empty UNIX socket path"},
		{"run/x.sock", "must be absolute"},
		{"x.sock", "must be absolute"},
		{"/run/", "names a directory"},
		{"/" + strings.Repeat("x", 107), "the limit is 107"},
		{"@" + strings.Repeat("x", 108), "the limit is 107"},
		{"/run/a\x00b", "NUL"},
		{"handoff:", "empty UNIX socket path"},
		{"handoff:rel/x", "must be absolute"},
		{"systemd:", "needs a FileDescriptorName"},
		{"systemd:a:b", "needs a FileDescriptorName"},
		{"systemd:a b", "needs a FileDescriptorName"},
		{"fd:", "descriptor number"},
		{"fd:2", "descriptor number of 3 or more"},
		{"fd:-3", "descriptor number"},
		{"fd:x", "descriptor number"},
		{"example", "want PORT, HOST:PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := ParseAddress(tt.in)
			if err == nil {
				t.Fatalf("ParseAddress(%q) = %+v; want an error containing %q", tt.in, a, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseAddress(%q) error = %q; want it to contain %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "127.0.0.0/8", want: "127.0.0.0/8"},
		{in: "127.1.2.3/8", want: "127.0.0.0/8"},
		{in: "::1", want: "::1/128"},
		{in: "10.0.0.1", want: "10.0.0.1/32"},
		{in: "::ffff:10.0.0.1", want: "10.0.0.1/32"},
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "10.0.0.0/33", wantErr: "bad CIDR"},
		{in: "::ffff:10.0.0.0/104", wantErr: "dotted form"},
		{in: "example.com", wantErr: "want an IP address or a CIDR"},
		{in: "", wantErr: "want an IP address or a CIDR"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePrefix(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePrefix(%q) = %v, %v; want error containing %q", tt.in, p, err, tt.wantErr)
				}
				return
			}
			if err != nil || p != netip.MustParsePrefix(tt.want) {
				t.Errorf("ParsePrefix(%q) = %v, %v; want %s", tt.in, p, err, tt.want)
			}
		})
	}
}

// FuzzParseAddress checks that ParseAddress never panics and that what it
// accepts is self-consistent: its canonical String parses again to the
// same socket.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"31337", ":31337", "[::]:31337", "0.0.0.0:31337", "127.0.0.1:8000",
		"tcp://127.0.0.1:80", "tcp4://:80", "tcp6://[::1]:80", "/run/x.sock",
		"unix:///run/x.sock", "@name", "unix://@name", "udp://127.0.0.1:6969",
		"handoff:/run/x", "systemd:web", "fd:3", "[fe80::1%eth0]:1", "[", "]:",
		"tcp6://[::ffff:1.2.3.4]:1", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		if a.Raw != s {
			t.Fatalf("Raw = %q; want %q", a.Raw, s)
		}
		switch a.Kind {
		case KindTCP, KindUDP:
			if a.Port < 0 || a.Port > 65535 {
				t.Fatalf("ParseAddress(%q): port %d accepted", s, a.Port)
			}
			again, err := ParseAddress(string(a.Kind) + "://" + a.String())
			if err != nil {
				t.Fatalf("canonical form %q of %q does not parse: %v", a.String(), s, err)
			}
			if again.Key() != a.Key() {
				t.Fatalf("canonical form of %q has key %q; want %q", s, again.Key(), a.Key())
			}
		case KindUnix, KindHandoff:
			if a.Path == "" || (!a.Abstract() && !strings.HasPrefix(a.Path, "/")) {
				t.Fatalf("ParseAddress(%q): path %q accepted", s, a.Path)
			}
		}
	})
}
