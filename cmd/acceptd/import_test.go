package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acceptd/acceptd/config"
)

const importServices = "echo 7/tcp\necho 7/udp\ntelnet 23/tcp\ntftp 69/udp\n"

// importDir writes the files of a test into a fresh directory, with the
// services table as "services".
func importDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["services"] = importServices
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runImportTest(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := runImport(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// checkConfig parses the output as acceptd would and returns its
// service names.
func checkConfig(t *testing.T, out string) []string {
	t.Helper()
	cfg, diags := config.Parse("import.hcl", []byte(out), config.AsWritten())
	if diags.HasErrors() {
		t.Fatalf("output is not a valid configuration: %v\n%s", diags, out)
	}
	var names []string
	for _, s := range cfg.Services {
		names = append(names, s.Name)
	}
	return names
}

func TestImportInetd(t *testing.T) {
	dir := importDir(t, map[string]string{"inetd.conf": `# comment
echo	stream	tcp	nowait	root	internal
telnet	stream	tcp	nowait	telnetd	/usr/sbin/tcpd	/usr/sbin/in.telnetd
tftp	dgram	udp	wait	nobody	/usr/sbin/in.tftpd	in.tftpd -s /srv/tftp
`})
	code, out, errOut := runImportTest("inetd", "-services", filepath.Join(dir, "services"), filepath.Join(dir, "inetd.conf"))
	if code != 0 {
		t.Fatalf("exit %d; want 0; stderr:\n%s", code, errOut)
	}
	if got, want := strings.Join(checkConfig(t, out), " "), "echo telnet tftp"; got != want {
		t.Errorf("services %q; want %q", got, want)
	}
	for _, want := range []string{`builtin = "echo"`, `command = ["/usr/sbin/in.telnetd"]`, "tcpd unwrapped", `accept  = false`, `"udp://0.0.0.0:69"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "3 services, 0 commented out, 0 not translated") {
		t.Errorf("stderr %q; want the summary", errOut)
	}
}

// TestImportXinetdDir reads a directory as xinetd's includedir does:
// names with a dot or ending in '~' are skipped.
func TestImportXinetdDir(t *testing.T) {
	dir := importDir(t, map[string]string{
		"xinetd.conf":   "defaults\n{\n\tinstances = 10\n}\nincludedir /etc/xinetd.d\n",
		"xinetd.d/echo": "service echo\n{\n\ttype = INTERNAL\n\tsocket_type = stream\n\twait = no\n}\n",
		"xinetd.d/telnet": "service telnet\n{\n\tsocket_type = stream\n\twait = no\n\tuser = root\n" +
			"\tserver = /usr/sbin/in.telnetd\n\tonly_from = 192.168.0.0\n}\n",
		"xinetd.d/telnet.dpkg-old": "this file is skipped\n",
		"xinetd.d/telnet~":         "and so is this one\n",
	})
	code, out, errOut := runImportTest("-services", filepath.Join(dir, "services"), "xinetd",
		filepath.Join(dir, "xinetd.conf"), filepath.Join(dir, "xinetd.d"))
	if code != 0 {
		t.Fatalf("exit %d; want 0; stderr:\n%s", code, errOut)
	}
	cfg, diags := config.Parse("import.hcl", []byte(out), config.AsWritten())
	if diags.HasErrors() {
		t.Fatalf("output is not valid: %v\n%s", diags, out)
	}
	if len(cfg.Services) != 2 {
		t.Fatalf("%d services; want 2:\n%s", len(cfg.Services), out)
	}
	telnet := cfg.Services[1]
	if telnet.MaxConnections != 10 || len(telnet.Allow) != 1 || telnet.Allow[0].String() != "192.168.0.0/16" {
		t.Errorf("telnet: max_connections %d, allow %v; want 10 (from defaults), [192.168.0.0/16]", telnet.MaxConnections, telnet.Allow)
	}
}

// TestImportPartial: an unreadable file and a line that cannot be
// parsed give exit 1, and everything else is still translated.
func TestImportPartial(t *testing.T) {
	dir := importDir(t, map[string]string{"inetd.conf": "echo stream tcp nowait root internal\ntelnet stream tcp\n"})
	missing := filepath.Join(dir, "missing.conf")
	conf := filepath.Join(dir, "inetd.conf")
	code, out, errOut := runImportTest("inetd", "-services", filepath.Join(dir, "services"), missing, conf)
	if code != 1 {
		t.Errorf("exit %d; want 1", code)
	}
	if got := checkConfig(t, out); len(got) != 1 || got[0] != "echo" {
		t.Errorf("services %q; want [echo]", got)
	}
	for _, want := range []string{missing + ": no such file", conf + ":2: want at least 6 fields"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestImportUsage(t *testing.T) {
	dir := importDir(t, map[string]string{"inetd.conf": "echo stream tcp nowait root internal\n"})
	conf := filepath.Join(dir, "inetd.conf")
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"no arguments", nil, 2},
		{"no file", []string{"inetd"}, 2},
		{"unknown kind", []string{"systemd", conf}, 2},
		{"unknown flag", []string{"-x", "inetd", conf}, 2},
		{"missing services file", []string{"-services", filepath.Join(dir, "nope"), "inetd", conf}, 1},
		{"directory for inetd", []string{"-services", filepath.Join(dir, "services"), "inetd", dir}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runImportTest(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d; want %d; stderr:\n%s", code, tc.code, errOut)
			}
			if code == 2 && out != "" {
				t.Errorf("usage error wrote to stdout: %q", out)
			}
		})
	}
}
