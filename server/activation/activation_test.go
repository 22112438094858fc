package activation

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/config"
)

// env is a fake environment for FromEnv: getenv reads it, unsetenv deletes
// from it and records the name.
type env struct {
	vars  map[string]string
	unset []string
}

func (e *env) getenv(k string) string { return e.vars[k] }
func (e *env) unsetenv(k string) error {
	e.unset = append(e.unset, k)
	delete(e.vars, k)
	return nil
}

// freeFDs returns the first of n consecutive descriptor numbers, at 600 or
// above, that are not open, so a test can place sockets there as systemd
// places them at 3.
func freeFDs(t *testing.T, n int) int {
	t.Helper()
	for start := 600; start < 10000; start++ {
		free := true
		for fd := start; fd < start+n && free; fd++ {
			free = !isOpen(fd)
		}
		if free {
			return start
		}
	}
	t.Fatalf("no %d free descriptors in 600-10000", n)
	return 0
}

func isOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

func cloexec(t *testing.T, fd int) bool {
	t.Helper()
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatalf("F_GETFD %d: %v", fd, err)
	}
	return flags&unix.FD_CLOEXEC != 0
}

// place duplicates fd to target without close-on-exec, as a parent passes
// it, and closes target at the end of the test unless it was closed (or
// replaced by another file) in the meantime.
func place(t *testing.T, fd, target int) {
	t.Helper()
	if err := unix.Dup3(fd, target, 0); err != nil {
		t.Fatalf("dup3 %d to %d: %v", fd, target, err)
	}
	var want unix.Stat_t
	if err := unix.Fstat(target, &want); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var st unix.Stat_t
		if unix.Fstat(target, &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			unix.Close(target)
		}
	})
}

// rawFD returns a dup of a listener's or conn's descriptor, which the test
// owns and closes at cleanup; the original is closed at once.
func rawFD(t *testing.T, c interface {
	File() (*os.File, error)
	Close() error
}) int {
	t.Helper()
	f, err := c.File()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

func listenTCP(t *testing.T, network, addr string) (int, int) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return rawFD(t, ln.(*net.TCPListener)), port
}

// bindOnly binds an AF_INET or AF_INET6 stream socket without listening,
// so that wildcard addresses can be tested without opening a port to
// anything beyond loopback.
func bindOnly(t *testing.T, sa unix.Sockaddr, v6only int) (int, int) {
	t.Helper()
	family := unix.AF_INET
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		t.Skipf("bind: %v", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	switch got := got.(type) {
	case *unix.SockaddrInet4:
		return fd, got.Port
	case *unix.SockaddrInet6:
		return fd, got.Port
	}
	t.Fatalf("getsockname: %T", got)
	return 0, 0
}

func shortDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 80 {
		var err error
		dir, err = os.MkdirTemp("", "acd")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return dir
}

func listenUnix(t *testing.T, network, path string) int {
	t.Helper()
	switch network {
	case "unixgram":
		c, err := net.ListenUnixgram(network, &net.UnixAddr{Name: path, Net: network})
		if err != nil {
			t.Fatal(err)
		}
		return rawFD(t, c)
	default:
		ln, err := net.ListenUnix(network, &net.UnixAddr{Name: path, Net: network})
		if err != nil {
			t.Fatal(err)
		}
		return rawFD(t, ln)
	}
}

// closeAll closes the Files FromEnv made, at the end of a test.
func closeAll(t *testing.T, s *Set) {
	t.Helper()
	t.Cleanup(func() {
		s.CloseUnclaimed()
		for _, sock := range s.All() {
			if sock.File != nil {
				sock.File.Close()
			}
		}
	})
}

func mustKey(t *testing.T, written string) string {
	t.Helper()
	a, err := config.ParseAddress(written)
	if err != nil {
		t.Fatalf("ParseAddress(%q): %v", written, err)
	}
	return a.Key()
}

// TestMalformedEnv feeds FromEnv every malformed or foreign variable set:
// each ends in a clear error or the documented fallback, and the variables
// are always removed.
func TestMalformedEnv(t *testing.T) {
	pid := os.Getpid()
	self := strconv.Itoa(pid)
	limit, ok := openFileLimit()
	if !ok {
		t.Fatal("no RLIMIT_NOFILE")
	}
	tests := []struct {
		name      string
		vars      map[string]string
		start     int    // 0: a free range
		wantErr   string // substring; "" for no error
		wantWarn  string // substring of a warning; "" for none
		wantCount int
	}{
		{name: "none", vars: map[string]string{}},
		{name: "pid absent", vars: map[string]string{"LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"}, wantWarn: "without LISTEN_PID"},
		{name: "pid mismatch", vars: map[string]string{"LISTEN_PID": strconv.Itoa(pid + 1), "LISTEN_FDS": "1"}, wantWarn: "is not this process"},
		{name: "pid zero", vars: map[string]string{"LISTEN_PID": "0", "LISTEN_FDS": "1"}, wantErr: `LISTEN_PID="0" is not a process id`},
		{name: "pid words", vars: map[string]string{"LISTEN_PID": "self", "LISTEN_FDS": "1"}, wantErr: `LISTEN_PID="self"`},
		{name: "pid signed", vars: map[string]string{"LISTEN_PID": "+" + self, "LISTEN_FDS": "1"}, wantErr: "is not a process id"},
		{name: "pid negative", vars: map[string]string{"LISTEN_PID": "-1", "LISTEN_FDS": "1"}, wantErr: "is not a process id"},
		{name: "pid spaces", vars: map[string]string{"LISTEN_PID": " " + self, "LISTEN_FDS": "1"}, wantErr: "is not a process id"},
		{name: "pid overflow", vars: map[string]string{"LISTEN_PID": "99999999999999999999", "LISTEN_FDS": "1"}, wantErr: "is not a process id"},
		{name: "fds absent", vars: map[string]string{"LISTEN_PID": self}},
		{name: "fds zero", vars: map[string]string{"LISTEN_PID": self, "LISTEN_FDS": "0"}},
		{name: "fds zero names", vars: map[string]string{"LISTEN_PID": self, "LISTEN_FDS": "0", "LISTEN_FDNAMES": "web"}, wantWarn: "names ignored"},
		{name: "fds negative", vars: map[string]string{"LISTEN_PID": self, "LISTEN_FDS": "-1"}, wantErr: `LISTEN_FDS="-1" is not a count`},
		{name: "fds words", vars: map[string]string{"LISTEN_PID": self, "LISTEN_FDS": "two"}, wantErr: `LISTEN_FDS="two"`},
		{name: "fds fraction", vars: map[string]string{"LISTEN_PID": self, "LISTEN_FDS": "1.5"}, wantErr: "is not a count"},
		{name: "fds huge", vars: map[string]string{"LISTEN_PID": self, "LISTEN_FDS": "10001"}, wantErr: "more than 10000"},
		{name: "fds overflow", vars: map[string]string{"LISTEN_PID": self, "LISTEN_FDS": "4294967299"}, wantErr: "is not a count"},
		{name: "fds beyond rlimit", vars: map[string]string{"LISTEN_PID": self, "LISTEN_FDS": "5"}, start: int(min(limit, 1<<30)) - 2, wantErr: "beyond the open file limit"},
		{name: "fds not open", vars: map[string]string{"LISTEN_PID": self, "LISTEN_FDS": "3"}, wantErr: "not open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &env{vars: tt.vars}
			start := tt.start
			if start == 0 {
				start = freeFDs(t, 3)
			}
			s, err := fromEnv(e.getenv, e.unsetenv, pid, start)
			if strings.Join(e.unset, " ") != "LISTEN_PID LISTEN_FDS LISTEN_FDNAMES" {
				t.Errorf("unset %v; want all three variables", e.unset)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FromEnv error = %v; want %q", err, tt.wantErr)
				}
				if s != nil {
					t.Errorf("FromEnv returned a Set with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			if got := len(s.All()); got != tt.wantCount {
				t.Errorf("%d sockets; want %d", got, tt.wantCount)
			}
			warns := strings.Join(s.Warnings(), "\n")
			if (tt.wantWarn == "") != (warns == "") || !strings.Contains(warns, tt.wantWarn) {
				t.Errorf("warnings %q; want %q", warns, tt.wantWarn)
			}
		})
	}
}

func TestNotOpenNamesEachFD(t *testing.T) {
	start := freeFDs(t, 3)
	ln, _ := listenTCP(t, "tcp4", "127.0.0.1:0")
	place(t, ln, start+1)
	e := &env{vars: map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "3"}}
	_, err := fromEnv(e.getenv, e.unsetenv, os.Getpid(), start)
	if err == nil {
		t.Fatal("FromEnv with two closed fds succeeded")
	}
	for _, want := range []string{"fd " + strconv.Itoa(start) + ": not open", "fd " + strconv.Itoa(start+2) + ": not open"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// The socket passed to us was refused with the rest, and closed.
	if isOpen(start + 1) {
		t.Errorf("fd %d still open after FromEnv refused the set", start+1)
	}
}

func TestNotASocket(t *testing.T) {
	start := freeFDs(t, 2)
	ln, _ := listenTCP(t, "tcp4", "127.0.0.1:0")
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	place(t, ln, start)
	place(t, p[0], start+1)
	e := &env{vars: map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:pipe"}}
	_, err := fromEnv(e.getenv, e.unsetenv, os.Getpid(), start)
	want := "fd " + strconv.Itoa(start+1) + ": not a socket (pipe:["
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("FromEnv error = %v; want %q", err, want)
	}
	if isOpen(start) {
		t.Errorf("refused socket fd %d left open", start)
	}
	// A non-socket may be this process's own: left open, but no child
	// gets it.
	if !isOpen(start + 1) {
		t.Fatalf("non-socket fd %d was closed", start+1)
	}
	if !cloexec(t, start+1) {
		t.Errorf("non-socket fd %d has no close-on-exec", start+1)
	}
}

func TestManyBadFDsListedBriefly(t *testing.T) {
	start := freeFDs(t, 50)
	e := &env{vars: map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "50"}}
	_, err := fromEnv(e.getenv, e.unsetenv, os.Getpid(), start)
	if err == nil || !strings.Contains(err.Error(), "and 42 more") {
		t.Fatalf("FromEnv error = %v; want a list cut at 8", err)
	}
}

// TestSockets passes one socket of every kind and checks what FromEnv
// reads from the kernel, above all that Key equals config's Key for the
// address a user would write.
func TestSockets(t *testing.T) {
	dir := shortDir(t)
	type sockCase struct {
		name      string
		fd        int
		network   string
		addr      string
		listening bool
		v6only    bool
		written   []string // config addresses whose Key must equal the Key
		key       string   // when no config form exists
	}
	var cases []sockCase

	fd, port := listenTCP(t, "tcp4", "127.0.0.1:0")
	p := strconv.Itoa(port)
	cases = append(cases, sockCase{name: "loop4", fd: fd, network: "tcp", addr: "127.0.0.1:" + p, listening: true,
		written: []string{"127.0.0.1:" + p, "tcp://127.0.0.1:" + p, "tcp4://127.0.0.1:" + p}})

	if fd, port, ok := tryListen6(t); ok {
		p := strconv.Itoa(port)
		cases = append(cases, sockCase{name: "loop6", fd: fd, network: "tcp", addr: "[::1]:" + p, listening: true, v6only: true,
			written: []string{"[::1]:" + p, "tcp6://[::1]:" + p}})
		fd, port := bindOnly(t, &unix.SockaddrInet6{}, 0)
		p = strconv.Itoa(port)
		cases = append(cases, sockCase{name: "dualstack", fd: fd, network: "tcp", addr: "[::]:" + p,
			written: []string{p, ":" + p, "[::]:" + p, "tcp://[::]:" + p}})
		fd, port = bindOnly(t, &unix.SockaddrInet6{}, 1)
		p = strconv.Itoa(port)
		cases = append(cases, sockCase{name: "v6only", fd: fd, network: "tcp", addr: "[::]:" + p, v6only: true,
			written: []string{"tcp6://[::]:" + p}})
		fd, port = bindOnly(t, &unix.SockaddrInet6{Addr: [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1}}, 0)
		p = strconv.Itoa(port)
		cases = append(cases, sockCase{name: "mapped", fd: fd, network: "tcp", addr: "127.0.0.1:" + p,
			written: []string{"127.0.0.1:" + p, "[::ffff:127.0.0.1]:" + p}})
	}

	fd, port = bindOnly(t, &unix.SockaddrInet4{}, 0)
	p = strconv.Itoa(port)
	cases = append(cases, sockCase{name: "any4", fd: fd, network: "tcp", addr: "0.0.0.0:" + p,
		written: []string{"0.0.0.0:" + p, "tcp4://:" + p, "tcp4://0.0.0.0:" + p}})

	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p = strconv.Itoa(uc.LocalAddr().(*net.UDPAddr).Port)
	cases = append(cases, sockCase{name: "udp", fd: rawFD(t, uc), network: "udp", addr: "127.0.0.1:" + p,
		written: []string{"udp://127.0.0.1:" + p}})

	path := filepath.Join(dir, "s")
	cases = append(cases, sockCase{name: "unix", fd: listenUnix(t, "unix", path), network: "unix", addr: path, listening: true,
		written: []string{path, "unix://" + path}})
	abstract := "@acd-test-" + strconv.Itoa(os.Getpid()) + "-" + filepath.Base(dir)
	cases = append(cases, sockCase{name: "abstract", fd: listenUnix(t, "unix", abstract), network: "unix", addr: abstract, listening: true,
		written: []string{abstract, "unix://" + abstract}})
	gpath := filepath.Join(dir, "g")
	cases = append(cases, sockCase{name: "unixgram", fd: listenUnix(t, "unixgram", gpath), network: "unixgram", addr: gpath,
		key: "unixgram " + gpath})
	ppath := filepath.Join(dir, "p")
	cases = append(cases, sockCase{name: "unixpacket", fd: listenUnix(t, "unixpacket", ppath), network: "unixpacket", addr: ppath, listening: true,
		key: "unixpacket " + ppath})

	start := freeFDs(t, len(cases))
	names := make([]string, len(cases))
	for i, c := range cases {
		place(t, c.fd, start+i)
		names[i] = c.name
	}
	e := &env{vars: map[string]string{
		"LISTEN_PID":     strconv.Itoa(os.Getpid()),
		"LISTEN_FDS":     strconv.Itoa(len(cases)),
		"LISTEN_FDNAMES": strings.Join(names, ":"),
	}}
	s, err := fromEnv(e.getenv, e.unsetenv, os.Getpid(), start)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	closeAll(t, s)
	if len(e.vars) != 0 {
		t.Errorf("variables left set: %v", e.vars)
	}
	all := s.All()
	if len(all) != len(cases) {
		t.Fatalf("%d sockets; want %d", len(all), len(cases))
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := all[i]
			if got.FD != start+i || got.Name != c.name || got.Network != c.network || got.Addr != c.addr ||
				got.Listening != c.listening || got.V6Only != c.v6only || !got.FromListenFDs {
				t.Errorf("socket = %+v; want fd %d name %q network %q addr %q listening %v v6only %v",
					*got, start+i, c.name, c.network, c.addr, c.listening, c.v6only)
			}
			if got.File == nil || int(got.File.Fd()) != got.FD {
				t.Errorf("File = %v; want fd %d", got.File, got.FD)
			}
			if !cloexec(t, got.FD) {
				t.Errorf("fd %d has no close-on-exec", got.FD)
			}
			for _, w := range c.written {
				if want := mustKey(t, w); got.Key != want {
					t.Errorf("Key = %q; config's Key for %q = %q", got.Key, w, want)
				}
			}
			if c.key != "" && got.Key != c.key {
				t.Errorf("Key = %q; want %q", got.Key, c.key)
			}
			if byName, ok := s.ByName(c.name); !ok || byName != got {
				t.Errorf("ByName(%q) = %v, %v; want fd %d", c.name, byName, ok, got.FD)
			}
			byKey, ok := s.ByKey(got.Key)
			if wantMatch := c.listening || c.network == "udp" || c.network == "unixgram"; ok != wantMatch || (ok && byKey != got) {
				t.Errorf("ByKey(%q) = %v, %v; want match %v", got.Key, byKey, ok, wantMatch)
			}
		})
	}
}

func tryListen6(t *testing.T) (int, int, bool) {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Logf("no IPv6 loopback, IPv6 cases skipped: %v", err)
		return 0, 0, false
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return rawFD(t, ln.(*net.TCPListener)), port, true
}

func TestNamesMismatchIgnored(t *testing.T) {
	for _, names := range []string{"web", "web:db:extra", "::::"} {
		t.Run(names, func(t *testing.T) {
			start := freeFDs(t, 2)
			for i := range 2 {
				fd, _ := listenTCP(t, "tcp4", "127.0.0.1:0")
				place(t, fd, start+i)
			}
			e := &env{vars: map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "2", "LISTEN_FDNAMES": names}}
			s, err := fromEnv(e.getenv, e.unsetenv, os.Getpid(), start)
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			closeAll(t, s)
			all := s.All()
			if len(all) != 2 || all[0].Name != "" || all[1].Name != "" {
				t.Errorf("sockets %+v, %+v; want two without names", all[0], all[1])
			}
			if w := s.Warnings(); len(w) != 1 || !strings.Contains(w[0], "names ignored") {
				t.Errorf("warnings %q; want names ignored", w)
			}
			if _, ok := s.ByName("web"); ok {
				t.Errorf("ByName(web) found a socket whose names were ignored")
			}
		})
	}
}

func TestNamesSharedAndDefault(t *testing.T) {
	start := freeFDs(t, 3)
	for i := range 3 {
		fd, _ := listenTCP(t, "tcp4", "127.0.0.1:0")
		place(t, fd, start+i)
	}
	e := &env{vars: map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "3", "LISTEN_FDNAMES": "web:unknown:web"}}
	s, err := fromEnv(e.getenv, e.unsetenv, os.Getpid(), start)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	closeAll(t, s)
	if got := s.Named("web"); len(got) != 2 || got[0].FD != start || got[1].FD != start+2 {
		t.Fatalf("Named(web) = %v; want fds %d and %d", got, start, start+2)
	}
	if got, ok := s.ByName("unknown"); !ok || got.FD != start+1 {
		t.Errorf("ByName(unknown) = %v, %v; want systemd's default name kept", got, ok)
	}
	first, _ := s.ByName("web")
	s.Claim(first)
	second, ok := s.ByName("web")
	if !ok || second.FD != start+2 {
		t.Fatalf("ByName(web) after claiming the first = %v, %v; want fd %d", second, ok, start+2)
	}
	s.Claim(second)
	if _, ok := s.ByName("web"); ok {
		t.Errorf("ByName(web) found a third socket")
	}
	if _, ok := s.ByName(""); ok {
		t.Errorf("ByName(\"\") found a socket")
	}
	closed := s.CloseUnclaimed()
	if len(closed) != 1 || closed[0].FD != start+1 || closed[0].File != nil {
		t.Errorf("CloseUnclaimed = %v; want fd %d closed", closed, start+1)
	}
	if isOpen(start + 1) {
		t.Errorf("unclaimed fd %d still open", start+1)
	}
	if !isOpen(start) || !isOpen(start+2) {
		t.Errorf("claimed fds closed")
	}
	if again := s.CloseUnclaimed(); len(again) != 0 {
		t.Errorf("second CloseUnclaimed = %v; want nothing", again)
	}
	first.File.Close()
	second.File.Close()
}

func TestClaimMisuse(t *testing.T) {
	start := freeFDs(t, 1)
	fd, _ := listenTCP(t, "tcp4", "127.0.0.1:0")
	place(t, fd, start)
	e := &env{vars: map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "1"}}
	s, err := fromEnv(e.getenv, e.unsetenv, os.Getpid(), start)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(t, s)
	sock := s.All()[0]
	s.Claim(sock)
	mustPanic(t, "double claim", func() { s.Claim(sock) })
	mustPanic(t, "foreign claim", func() { s.Claim(&Socket{FD: 99}) })
	if _, err := s.ByFD(start); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("ByFD of a claimed fd: %v; want already in use", err)
	}
	if _, ok := s.ByKey(sock.Key); ok {
		t.Errorf("ByKey returned a claimed socket")
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

// TestByFD covers fd:N: a LISTEN_FDS socket, a socket inherited without
// LISTEN_FDS, and each way an fd:N can be wrong.
func TestByFD(t *testing.T) {
	start := freeFDs(t, 4)
	listenFD, _ := listenTCP(t, "tcp4", "127.0.0.1:0")
	place(t, listenFD, start)
	extra, port := listenTCP(t, "tcp4", "127.0.0.1:0")
	place(t, extra, start+2) // open before FromEnv, not in LISTEN_FDS
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })

	e := &env{vars: map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "1"}}
	s, err := fromEnv(e.getenv, e.unsetenv, os.Getpid(), start)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(t, s)

	late, _ := listenTCP(t, "tcp4", "127.0.0.1:0") // opened after FromEnv

	if got, err := s.ByFD(start); err != nil || got.FD != start || !got.FromListenFDs {
		t.Errorf("ByFD(%d) = %+v, %v; want the LISTEN_FDS socket", start, got, err)
	}
	got, err := s.ByFD(start + 2)
	if err != nil {
		t.Fatalf("ByFD(%d) of an inherited socket: %v", start+2, err)
	}
	if got.FromListenFDs || got.Key != "tcp 127.0.0.1:"+strconv.Itoa(port) || !got.Listening || got.File == nil || !cloexec(t, start+2) {
		t.Errorf("ByFD(%d) = %+v; want an adopted listening socket with close-on-exec", start+2, got)
	}
	if again, err := s.ByFD(start + 2); err != nil || again != got {
		t.Errorf("second ByFD(%d) = %v, %v; want the same socket", start+2, again, err)
	}
	if n := len(s.All()); n != 2 {
		t.Errorf("All has %d sockets; want 2", n)
	}

	for _, tt := range []struct {
		fd   int
		want string
	}{
		{start + 1, "not open when acceptd started"},
		{start + 3, "not open when acceptd started"},
		{late, "not open when acceptd started"},
		{-1, "not a descriptor number"},
	} {
		if _, err := s.ByFD(tt.fd); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ByFD(%d) error = %v; want %q", tt.fd, err, tt.want)
		}
	}
	// Without the start-up list (no /proc), the kernel's answer decides.
	s.atStart = nil
	if _, err := s.ByFD(start + 3); err == nil || !strings.Contains(err.Error(), "not open") {
		t.Errorf("ByFD of a closed fd: %v; want not open", err)
	}
	if _, err := s.ByFD(p[0]); err == nil || !strings.Contains(err.Error(), "not a socket (pipe:[") {
		t.Errorf("ByFD of a pipe: %v; want not a socket", err)
	}

	closed := s.CloseUnclaimed()
	if len(closed) != 2 {
		t.Errorf("CloseUnclaimed closed %d; want 2", len(closed))
	}
	if _, err := s.ByFD(start); err == nil || !strings.Contains(err.Error(), "closed already") {
		t.Errorf("ByFD after CloseUnclaimed: %v; want closed already", err)
	}
}

// FuzzFromEnv checks that no variable content makes FromEnv panic. The
// descriptors it looks at are far above anything the test opens.
func FuzzFromEnv(f *testing.F) {
	for _, seed := range [][3]string{
		{"1", "1", "a"}, {"", "3", ""}, {"x", "-", ":"}, {"1", "0", "a:b"},
		{"1", "10000", ""}, {"1", "18446744073709551617", ""}, {"1", "2", "\x00:\n"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, pidStr, fds, names string) {
		e := &env{vars: map[string]string{"LISTEN_PID": pidStr, "LISTEN_FDS": fds, "LISTEN_FDNAMES": names}}
		s, err := fromEnv(e.getenv, e.unsetenv, 1, 20000)
		if err == nil && len(s.All()) != 0 {
			t.Fatalf("sockets found at fd 20000+")
		}
		if len(e.vars) != 0 {
			t.Fatalf("variables left: %v", e.vars)
		}
	})
}
