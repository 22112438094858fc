package activation

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary play the socket-activated daemon: it
// runs [helperMain] instead of the tests.
const helperEnv = "ACCEPTD_ACTIVATION_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// helperReport is what the helper prints on stdout as JSON.
type helperReport struct {
	Err      string
	Warnings []string
	Sockets  []helperSocket
	// Env is LISTEN_* as the helper sees them after FromEnv.
	Env map[string]string
	// Served says what the helper did with the first socket.
	Served string
}

type helperSocket struct {
	FD        int
	Name      string
	Network   string
	Addr      string
	Key       string
	Listening bool
	Cloexec   bool
}

// helperMain takes the sockets the way acceptd does, then serves the
// first one once: it accepts the connection that woke
// systemd-socket-activate and greets it, or reads the datagram that did.
func helperMain() int {
	var r helperReport
	s, err := FromEnv(os.Getenv, os.Unsetenv, os.Getpid())
	if err != nil {
		r.Err = err.Error()
	} else {
		r.Warnings = s.Warnings()
		for _, sock := range s.All() {
			flags, _ := unix.FcntlInt(uintptr(sock.FD), unix.F_GETFD, 0)
			r.Sockets = append(r.Sockets, helperSocket{sock.FD, sock.Name, sock.Network, sock.Addr, sock.Key, sock.Listening, flags&unix.FD_CLOEXEC != 0})
		}
		r.Served = serveFirst(s)
	}
	r.Env = map[string]string{}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if v, ok := os.LookupEnv(k); ok {
			r.Env[k] = v
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func serveFirst(s *Set) string {
	all := s.All()
	if len(all) == 0 {
		return "no socket"
	}
	sock := all[0]
	s.Claim(sock)
	defer s.CloseUnclaimed()
	defer sock.File.Close()
	switch sock.Network {
	case "unixgram":
		pc, err := net.FilePacketConn(sock.File)
		if err != nil {
			return err.Error()
		}
		defer pc.Close()
		pc.SetDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 64)
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return err.Error()
		}
		return "read " + string(buf[:n])
	default:
		ln, err := net.FileListener(sock.File)
		if err != nil {
			return err.Error()
		}
		defer ln.Close()
		// The connection that woke systemd-socket-activate is waiting in
		// the backlog; there is no other to wait for.
		if d, ok := ln.(interface{ SetDeadline(time.Time) error }); ok {
			d.SetDeadline(time.Now().Add(20 * time.Second))
		}
		c, err := ln.Accept()
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		fmt.Fprintf(c, "hello from fd %d\n", sock.FD)
		return "greeted"
	}
}

func socketActivate(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		if os.Getenv("ACCEPTD_REQUIRE_PEERS") == "1" {
			t.Fatalf("systemd-socket-activate is required (ACCEPTD_REQUIRE_PEERS=1): %v", err)
		}
		t.Skipf("systemd-socket-activate not installed (Debian: package systemd); set ACCEPTD_REQUIRE_PEERS=1 to make this a failure: %v", err)
	}
	return path
}

// TestSystemdSocketActivate has systemd's own tool bind the sockets and
// start the test binary with them, as a socket unit would.
func TestSystemdSocketActivate(t *testing.T) {
	tool := socketActivate(t)
	dir := shortDir(t)
	path := filepath.Join(dir, "web.sock")
	abstract := "@acd-activate-" + strconv.Itoa(os.Getpid())
	gram := filepath.Join(dir, "dg.sock")

	tests := []struct {
		name   string
		args   []string
		wake   func(t *testing.T) string // wakes the tool; returns what it heard back
		want   []helperSocket
		served string
		heard  string
	}{
		{
			name: "stream",
			args: []string{"-l", path, "-l", abstract, "--fdname=web:admin"},
			wake: func(t *testing.T) string {
				c := dialWhenReady(t, "unix", path)
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					t.Errorf("read greeting: %v", err)
				}
				return line
			},
			want: []helperSocket{
				{FD: 3, Name: "web", Network: "unix", Addr: path, Key: mustKey(t, path), Listening: true, Cloexec: true},
				{FD: 4, Name: "admin", Network: "unix", Addr: abstract, Key: mustKey(t, "unix://"+abstract), Listening: true, Cloexec: true},
			},
			served: "greeted",
			heard:  "hello from fd 3\n",
		},
		{
			name: "datagram",
			args: []string{"-d", "-l", gram, "--fdname=dg"},
			wake: func(t *testing.T) string {
				c := dialWhenReady(t, "unixgram", gram)
				defer c.Close()
				if _, err := c.Write([]byte("ping")); err != nil {
					t.Errorf("send: %v", err)
				}
				return ""
			},
			want: []helperSocket{
				{FD: 3, Name: "dg", Network: "unixgram", Addr: gram, Key: "unixgram " + gram, Cloexec: true},
			},
			served: "read ping",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
			defer cancel()
			args := append(append([]string{}, tt.args...), "-E", helperEnv+"=1", os.Args[0])
			cmd := exec.CommandContext(ctx, tool, args...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			heard := tt.wake(t)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("%s: %v\nstderr:\n%s", cmd, err, stderr.String())
			}
			var r helperReport
			if err := json.Unmarshal([]byte(stdout.String()), &r); err != nil {
				t.Fatalf("helper output %q: %v\nstderr:\n%s", stdout.String(), err, stderr.String())
			}
			if r.Err != "" || len(r.Warnings) != 0 {
				t.Fatalf("FromEnv in the child: error %q, warnings %q", r.Err, r.Warnings)
			}
			if fmt.Sprint(r.Sockets) != fmt.Sprint(tt.want) {
				t.Errorf("child's sockets\n %+v\nwant\n %+v", r.Sockets, tt.want)
			}
			if len(r.Env) != 0 {
				t.Errorf("LISTEN_* still set in the child after FromEnv: %v", r.Env)
			}
			if r.Served != tt.served || heard != tt.heard {
				t.Errorf("child served %q, client heard %q; want %q, %q", r.Served, heard, tt.served, tt.heard)
			}
		})
	}
}

// dialWhenReady connects once the tool has bound addr, for at most 30 s.
func dialWhenReady(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial(network, addr)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd-socket-activate never bound %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
