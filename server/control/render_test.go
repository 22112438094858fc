package control

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acceptd/acceptd/server"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// now is the fixed "current time" of the render tests.
var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// sampleStatus has one service of every mode, several listen addresses
// and instances, and the instance kinds whose remote is not in the name.
func sampleStatus() server.Status {
	return server.Status{Services: []server.ServiceStatus{
		{
			Name: "hello", Mode: "exec",
			Listen:   []string{"[::]:31337", "/run/hello.sock"},
			Accepted: 8, Connected: 2, Refused: 0,
			Instances: []server.InstanceStatus{
				{Name: "hello@6-127.0.0.1:31337-127.0.0.1:50312", Pid: 4711, UID: 61184, GID: 61184,
					Remote: "127.0.0.1:50312", Local: "127.0.0.1:31337", Started: now.Add(-2100 * time.Millisecond)},
				{Name: "hello@7-4242-1000", Pid: 4712, UID: 0, GID: 0,
					Remote: "@peer", Local: "/run/hello.sock", Started: now.Add(-(3*time.Minute + 4*time.Second))},
			},
		},
		{
			Name: "nginx", Mode: "proxy",
			Listen:   []string{"0.0.0.0:80"},
			Accepted: 120, Connected: 1, Refused: 3,
			BytesIn: 1536, BytesOut: 12 << 20,
			Instances: []server.InstanceStatus{
				{Name: "nginx@119-10.0.0.1:80-10.0.0.9:40000", Remote: "10.0.0.9:40000", Local: "10.0.0.1:80",
					Started: now.Add(-(5*time.Hour + 7*time.Minute))},
			},
		},
		{
			Name: "tftp", Mode: "exec-wait",
			Listen: []string{"udp://127.0.0.1:6969"},
			Instances: []server.InstanceStatus{
				{Name: "tftp", Pid: 900, UID: 0, Started: now.Add(-(50 * time.Hour))},
			},
		},
		{Name: "echo", Mode: "builtin", Listen: []string{"127.0.0.1:7"}, Accepted: 1},
		{Name: "ssh-in-container", Mode: "exec", Listen: []string{"handoff:/run/containers/one/accept.sock"}},
		{Name: "containers", Mode: "handoff", Listen: []string{"[::]:22"}, Accepted: 2, Refused: 1},
	}}
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		file  string
		color bool
	}{
		{"status.golden", false},
		{"status-color.golden", true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, sampleStatus(), tc.color, now); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != string(want) {
				t.Errorf("Render() =\n%s\nwant (%s):\n%s", got, golden, want)
			}
		})
	}
}

// TestRenderContractExample checks the example of CONTRACT: Status
// byte for byte.
func TestRenderContractExample(t *testing.T) {
	st := server.Status{Services: []server.ServiceStatus{{
		Name: "hello", Mode: "exec", Listen: []string{"[::]:31337"},
		Accepted: 8, Connected: 1,
		Instances: []server.InstanceStatus{{
			Name: "hello@8-127.0.0.1:31337-127.0.0.1:50312", Pid: 4711, UID: 61184, GID: 61184,
			Remote: "127.0.0.1:50312", Local: "127.0.0.1:31337", Started: now.Add(-2100 * time.Millisecond),
		}},
	}}}
	const want = `● hello — exec (per connection)
     Listen: [::]:31337 (Stream)
   Accepted: 8; Connected: 1; Refused: 0
   Triggers: ● hello@8-127.0.0.1:31337-127.0.0.1:50312  pid 4711  uid 61184  up 2.1s
`
	var buf bytes.Buffer
	if err := Render(&buf, st, false, now); err != nil {
		t.Fatal(err)
	}
	if buf.String() != want {
		t.Errorf("Render() =\n%q\nwant\n%q", buf.String(), want)
	}
}

func TestRenderColorOnlyWhenAsked(t *testing.T) {
	var plain, colored bytes.Buffer
	Render(&plain, sampleStatus(), false, now)
	Render(&colored, sampleStatus(), true, now)
	if strings.Contains(plain.String(), "\x1b") {
		t.Errorf("uncoloured output contains an escape sequence:\n%q", plain.String())
	}
	if !strings.Contains(colored.String(), colorGreen+dot+colorReset+" hello") {
		t.Errorf("coloured output lacks a green dot for hello:\n%q", colored.String())
	}
	// Stripping the escapes from the coloured output gives the plain one.
	stripped := strings.NewReplacer(colorGreen, "", colorReset, "").Replace(colored.String())
	if stripped != plain.String() {
		t.Errorf("coloured output differs from the plain one beyond escapes")
	}
}

func TestRenderEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := Render(&buf, server.Status{}, true, now); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("Render(no services) = %q, want nothing", buf.String())
	}
}

func TestUptime(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0.0s"},
		{0, "0.0s"},
		{300 * time.Millisecond, "0.3s"},
		{2100 * time.Millisecond, "2.1s"},
		{42 * time.Second, "42s"},
		{3*time.Minute + 4*time.Second, "3m04s"},
		{5*time.Hour + 7*time.Minute + 59*time.Second, "5h07m"},
		{50 * time.Hour, "2d02h"},
	} {
		if got := uptime(tc.d); got != tc.want {
			t.Errorf("uptime(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{12 << 20, "12.0 MiB"},
		{3 << 30, "3.0 GiB"},
		{1<<64 - 1, "16.0 EiB"},
	} {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestListenKind(t *testing.T) {
	for addr, want := range map[string]string{
		"[::]:31337":           "Stream",
		"127.0.0.1:80":         "Stream",
		"/run/x.sock":          "Stream",
		"@abstract":            "Stream",
		"udp://127.0.0.1:6969": "Datagram",
		"udp6://[::1]:53":      "Datagram",
		"handoff:/run/a.sock":  "Handoff",
		"":                     "Stream",
	} {
		if got := listenKind(addr); got != want {
			t.Errorf("listenKind(%q) = %q, want %q", addr, got, want)
		}
	}
}
