package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestFlagErrors: exec and proxy report a bad flag value, or an address
// they cannot bind, by the command's name and the value, not by a line
// and column of the configuration they write from their flags (which the
// user never sees).
func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		run  func([]string, io.Writer, io.Writer) int
		args []string
		want string
	}{
		{runExec, []string{"-listen", "127.0.0.1:99999", "--", "/bin/true"},
			`acceptd exec: Invalid listen address: bad address "127.0.0.1:99999": port 99999 out of range 0-65535.`},
		{runProxy, []string{"-listen", "relative.sock", "127.0.0.1:1"},
			`acceptd proxy: Invalid listen address: bad address "relative.sock": a UNIX socket path must be absolute.`},
		{runProxy, []string{"-c", "0", "-listen", "127.0.0.1:0", "127.0.0.1:1"},
			`acceptd proxy: -connections-max 0: it must be 1 or more`},
		// 192.0.2.0/24 is TEST-NET-1: no host has it, so the bind fails.
		{runExec, []string{"-listen", "192.0.2.1:0", "--", "/bin/true"},
			`acceptd: bind service "exec": listen tcp 192.0.2.1:0: bind: cannot assign requested address`},
	} {
		var stdout, stderr bytes.Buffer
		code := tc.run(tc.args, &stdout, &stderr)
		if code == 0 || strings.TrimSpace(stderr.String()) != tc.want {
			t.Errorf("%v: exit %d, stderr %q; want non-zero and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestProxyTarget: a TARGET without a port means port 80, as
// systemd-socket-proxyd reads it; every other form is acceptd's own.
func TestProxyTarget(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":            "127.0.0.1:80",
		"backend.internal":     "backend.internal:80",
		"127.0.0.1:8080":       "127.0.0.1:8080",
		"[::1]:8080":           "[::1]:8080",
		"8080":                 "8080",
		"/run/nginx/socket":    "/run/nginx/socket",
		"@nginx":               "@nginx",
		"unix:///run/x.sock":   "unix:///run/x.sock",
		"tcp://127.0.0.1:8000": "tcp://127.0.0.1:8000",
	} {
		if got := proxyTarget(in); got != want {
			t.Errorf("proxyTarget(%q) = %q, want %q", in, got, want)
		}
	}
}
