package spawn_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/acceptd/acceptd/spawn"
)

func TestConnEnv(t *testing.T) {
	const path = "PATH=" + spawn.DefaultPath
	tests := []struct {
		name string
		c    spawn.Conn
		want []string
	}{
		{
			name: "tcp4",
			c: spawn.Conn{Proto: "TCP", RemoteIP: netip.MustParseAddr("127.0.0.1"), RemotePort: 50312,
				LocalIP: netip.MustParseAddr("127.0.0.2"), LocalPort: 31337, PeerPID: -1, PeerUID: -1, PeerGID: -1},
			want: []string{path, "REMOTE_ADDR=127.0.0.1", "REMOTE_PORT=50312", "PROTO=TCP",
				"TCPREMOTEIP=127.0.0.1", "TCPREMOTEPORT=50312", "TCPLOCALIP=127.0.0.2", "TCPLOCALPORT=31337",
				"ACCEPTD_SERVICE=hello", "ACCEPTD_INSTANCE=hello@8"},
		},
		{
			name: "tcp6-mapped-and-zone",
			c: spawn.Conn{Proto: "TCP", RemoteIP: netip.MustParseAddr("::ffff:192.0.2.7"), RemotePort: 1,
				LocalIP: netip.MustParseAddr("fe80::1%eth0"), LocalPort: 22},
			want: []string{path, "REMOTE_ADDR=192.0.2.7", "REMOTE_PORT=1", "PROTO=TCP",
				"TCPREMOTEIP=192.0.2.7", "TCPREMOTEPORT=1", "TCPLOCALIP=fe80::1", "TCPLOCALPORT=22",
				"ACCEPTD_SERVICE=hello", "ACCEPTD_INSTANCE=hello@8"},
		},
		{
			name: "unix-named",
			c:    spawn.Conn{Proto: "UNIX", RemotePath: "/run/client.sock", PeerPID: 4711, PeerUID: 0, PeerGID: 100},
			want: []string{path, "REMOTE_ADDR=/run/client.sock", "PROTO=UNIX", "UNIXREMOTEPID=4711",
				"UNIXREMOTEEUID=0", "UNIXREMOTEEGID=100", "ACCEPTD_SERVICE=hello", "ACCEPTD_INSTANCE=hello@8"},
		},
		{
			name: "unix-unnamed-unknown-peer",
			c:    spawn.Conn{Proto: "UNIX", PeerPID: -1, PeerUID: -1, PeerGID: -1},
			want: []string{path, "PROTO=UNIX", "ACCEPTD_SERVICE=hello", "ACCEPTD_INSTANCE=hello@8"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := spawn.ConnEnv([]string{"KEEP=1"}, &tt.c, "hello", "hello@8")
			want := append([]string{"KEEP=1"}, tt.want...)
			if !slices.Equal(got, want) {
				t.Errorf("ConnEnv() =\n%q\nwant\n%q", got, want)
			}
		})
	}
}

func TestConnEnvLong(t *testing.T) {
	// Longer than ConnEnv's stack buffer.
	long := string(make([]byte, 600))
	got := spawn.ConnEnv(nil, &spawn.Conn{Proto: "UNIX", RemotePath: "/x", PeerPID: -1, PeerUID: -1, PeerGID: -1}, long, "i")
	if got[len(got)-2] != "ACCEPTD_SERVICE="+long || got[len(got)-1] != "ACCEPTD_INSTANCE=i" || got[1] != "REMOTE_ADDR=/x" {
		t.Errorf("ConnEnv with a long service name = %q", got)
	}
}

func TestMergeEnv(t *testing.T) {
	tests := []struct {
		name    string
		in, out []string
	}{
		{"none", nil, []string{}},
		{"no-dups", []string{"A=1", "B=2"}, []string{"A=1", "B=2"}},
		{"last-wins-first-place", []string{"PATH=/bin", "A=1", "PATH=/opt/bin", "B=", "A=3"},
			[]string{"PATH=/opt/bin", "A=3", "B="}},
		{"no-equals", []string{"A", "A=1"}, []string{"A=1"}},
	}
	many := make([]string, 0, 200)
	for i := range 100 {
		many = append(many, "V"+string(rune('A'+i%26))+string(rune('A'+i/26))+"=1")
	}
	manyOut := slices.Clone(many)
	manyOut[0] = "VAA=2"
	tests = append(tests, struct {
		name    string
		in, out []string
	}{"many", append(slices.Clone(many), "VAA=2"), manyOut})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := spawn.MergeEnv(slices.Clone(tt.in)); !slices.Equal(got, tt.out) && !(len(got) == 0 && len(tt.out) == 0) {
				t.Errorf("MergeEnv(%q) = %q; want %q", tt.in, got, tt.out)
			}
		})
	}
}
