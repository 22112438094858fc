package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/acceptd/acceptd/internal/testutil"
	"github.com/acceptd/acceptd/server"
)

// childEnv makes the test binary play a client that only tries to connect
// to the socket named by the variable (see TestNonRootClientRefused).
const childEnv = "ACCEPTD_CONTROL_TEST_CONNECT"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(connectChild(path))
	}
	goleak.VerifyTestMain(m)
}

// connectChild connects to path and reports the outcome on stdout:
// "ok" or the errno's name.
func connectChild(path string) int {
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		os.Stdout.WriteString("ok\n")
		return 0
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && errno == syscall.EACCES {
		os.Stdout.WriteString("EACCES\n")
		return 0
	}
	os.Stdout.WriteString(err.Error() + "\n")
	return 0
}

// fakeBackend serves a fixed Status and Reload result and counts reloads.
type fakeBackend struct {
	st  server.Status
	res server.ReloadResult

	mu      sync.Mutex
	reloads int
}

func (f *fakeBackend) Status() server.Status { return f.st }

func (f *fakeBackend) Reload(ctx context.Context) server.ReloadResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	return f.res
}

// sockDir returns a short directory for sockets: t.TempDir() paths can
// exceed the 108 bytes of sun_path.
func sockDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "acd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// serve starts a control server for b at a fresh path and stops it when
// the test ends, checking that Serve returned nil and removed the file.
func serve(t *testing.T, b Backend, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(sockDir(t), "run", "control.sock")
	s, err := Listen(path, mode)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, b, zaptest.NewLogger(t)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v, want nil", err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket file still there after Serve returned: %v", err)
		}
	})
	return path
}

func client(t *testing.T, path string) *Client {
	c := Dial(path)
	t.Cleanup(c.Close)
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStatusRoundTrip(t *testing.T) {
	want := sampleStatus()
	c := client(t, serve(t, &fakeBackend{st: want}, 0))
	got, err := c.Status(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Services) != len(want.Services) {
		t.Fatalf("got %d services, want %d", len(got.Services), len(want.Services))
	}
	for i := range want.Services {
		w, g := want.Services[i], got.Services[i]
		// The wire replaces nil lists by empty ones; times lose their
		// monotonic reading. Compare what a user sees.
		if w.Instances == nil {
			w.Instances = []server.InstanceStatus{}
		}
		for j := range w.Instances {
			if !g.Instances[j].Started.Equal(w.Instances[j].Started) {
				t.Errorf("%s instance %d started %v, want %v", w.Name, j, g.Instances[j].Started, w.Instances[j].Started)
			}
			g.Instances[j].Started = w.Instances[j].Started
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("service %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// TestStatusJSONSchema checks the field names of CONTRACT: Status on the
// raw reply, and that lists are never null.
func TestStatusJSONSchema(t *testing.T) {
	st := sampleStatus()
	st.Services = append(st.Services, server.ServiceStatus{Name: "bare", Mode: "exec"}) // nil lists
	path := serve(t, &fakeBackend{st: st}, 0)
	body := rawGet(t, path, "/v1/status")

	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("reply is not a JSON object: %v\n%s", err, body)
	}
	if got := keys(doc); !reflect.DeepEqual(got, []string{"services"}) {
		t.Fatalf("top-level keys %v, want [services]", got)
	}
	services := doc["services"].([]any)
	serviceKeys := []string{"accepted", "bytes_in", "bytes_out", "connected", "instances", "listen", "mode", "name", "refused"}
	instanceKeys := []string{"gid", "local", "name", "pid", "remote", "started", "uid"}
	for _, s := range services {
		m := s.(map[string]any)
		// refused_reasons and exits are extra (for metrics), and omitted
		// when empty.
		got := without(keys(m), "refused_reasons", "exits")
		if !reflect.DeepEqual(got, serviceKeys) {
			t.Errorf("service %v keys %v, want %v", m["name"], got, serviceKeys)
		}
		if _, ok := m["listen"].([]any); !ok {
			t.Errorf("service %v: listen is %T, want a list", m["name"], m["listen"])
		}
		ins, ok := m["instances"].([]any)
		if !ok {
			t.Errorf("service %v: instances is %T, want a list", m["name"], m["instances"])
		}
		for _, in := range ins {
			if got := keys(in.(map[string]any)); !reflect.DeepEqual(got, instanceKeys) {
				t.Errorf("instance keys %v, want %v", got, instanceKeys)
			}
		}
	}
	// Values: the first instance of hello as written in sampleStatus.
	in := services[0].(map[string]any)["instances"].([]any)[0].(map[string]any)
	if in["pid"] != float64(4711) || in["uid"] != float64(61184) || in["remote"] != "127.0.0.1:50312" ||
		in["started"] != "2025-03-01T11:59:57.9Z" {
		t.Errorf("instance values %v", in)
	}
	if n := services[1].(map[string]any); n["bytes_in"] != float64(1536) || n["bytes_out"] != float64(12<<20) {
		t.Errorf("nginx bytes %v %v", n["bytes_in"], n["bytes_out"])
	}
}

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

func without(list []string, drop ...string) []string {
	var out []string
	for _, s := range list {
		if !strings.Contains(" "+strings.Join(drop, " ")+" ", " "+s+" ") {
			out = append(out, s)
		}
	}
	return out
}

func rawGet(t *testing.T, path, url string) []byte {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
	defer hc.CloseIdleConnections()
	resp, body := testutil.Get(t, hc, "http://x"+url)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", url, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return body
}

func TestStatusFilter(t *testing.T) {
	c := client(t, serve(t, &fakeBackend{st: sampleStatus()}, 0))
	ctx := ctxT(t)

	// The server's order is kept, not the order asked.
	st, err := c.Status(ctx, "tftp", "hello")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range st.Services {
		names = append(names, s.Name)
	}
	if !reflect.DeepEqual(names, []string{"hello", "tftp"}) {
		t.Errorf("filtered services %v, want [hello tftp]", names)
	}

	_, err = c.Status(ctx, "hello", "nope", "nada", "nope")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
		t.Fatalf("Status(unknown) error %v, want an APIError 404", err)
	}
	if want := `unknown services ["nope" "nada"]`; apiErr.Message != want {
		t.Errorf("message %q, want %q", apiErr.Message, want)
	}
	_, err = c.Status(ctx, "nope")
	if err == nil || err.Error() != `unknown service "nope"` {
		t.Errorf("Status(nope) error %v", err)
	}
}

func TestReload(t *testing.T) {
	for _, res := range []server.ReloadResult{
		{Added: []string{"a", "b"}, Removed: []string{"c"}, Changed: []string{"d"}, Unchanged: []string{"e"}},
		{Errors: []string{"/etc/acceptd/acceptd.hcl:3,5: unknown field \"lisen\""}},
	} {
		b := &fakeBackend{res: res}
		c := client(t, serve(t, b, 0))
		got, err := c.Reload(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, res) {
			t.Errorf("Reload() = %+v, want %+v", got, res)
		}
		if b.reloads != 1 {
			t.Errorf("backend reloaded %d times, want 1", b.reloads)
		}
	}
}

func TestMethodsAndPaths(t *testing.T) {
	b := &fakeBackend{st: sampleStatus()}
	path := serve(t, b, 0)
	for _, tc := range []struct {
		method, url string
		code        int
		allow       string
	}{
		{"GET", "/v1/status", 200, ""},
		{"HEAD", "/v1/status", 200, ""},
		{"POST", "/v1/status", 405, "GET, HEAD"},
		{"DELETE", "/v1/status", 405, "GET, HEAD"},
		{"GET", "/v1/reload", 405, "POST"},
		{"GET", "/", 404, ""},
		{"GET", "/v2/status", 404, ""},
		{"GET", "/v1/status/x", 404, ""},
	} {
		code, allow, body := rawRequest(t, path, tc.method+" "+tc.url+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if code != tc.code || allow != tc.allow {
			t.Errorf("%s %s: %d (Allow %q), want %d (Allow %q)", tc.method, tc.url, code, allow, tc.code, tc.allow)
		}
		if code >= 400 && !strings.HasPrefix(body, `{"error":`) {
			t.Errorf("%s %s: body %q, want a JSON error", tc.method, tc.url, body)
		}
	}
	if b.reloads != 0 {
		t.Errorf("a wrong request reloaded the backend")
	}
}

// rawRequest writes req as is and returns the reply's status code, Allow
// header and body.
func rawRequest(t *testing.T, path, req string) (int, string, string) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(req, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Allow"), string(body)
}

// TestGarbage writes bytes that are not HTTP, or are HTTP gone wrong, and
// checks that the server answers normally afterwards.
func TestGarbage(t *testing.T) {
	b := &fakeBackend{st: sampleStatus()}
	path := serve(t, b, 0)
	big := strings.Repeat("A", 2*maxBodyBytes)
	for _, g := range []string{
		"\x00\x01\x02\xff\xfe garbage\r\n\r\n",
		"GET\r\n\r\n",
		"GET /v1/status HTTP/9.9\r\n\r\n",
		"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("h", 2*maxHeaderBytes) + "\r\n\r\n",
		"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: " + "131072" + "\r\n\r\n" + big,
		"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
		"POST /v1/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"GET /v1/status?service=%zz HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/status HTTP/1.1\r\nHost: x\r\n", // incomplete: the client hangs up
	} {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, g)
		// Read whatever comes back (an error reply, or nothing) until the
		// server or the deadline closes; then hang up.
		c.(*net.UnixConn).CloseWrite()
		io.Copy(io.Discard, c)
		c.Close()
	}
	if b.reloads != 0 {
		t.Errorf("garbage reloaded the backend %d times", b.reloads)
	}
	st, err := client(t, path).Status(ctxT(t), "hello")
	if err != nil || len(st.Services) != 1 {
		t.Fatalf("after garbage: Status() = %v, %v", st, err)
	}
}

func TestSocketMode(t *testing.T) {
	for _, tc := range []struct {
		mode, want os.FileMode
	}{
		{0, 0o600},
		{0o660, 0o660},
	} {
		path := serve(t, &fakeBackend{}, tc.mode)
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != tc.want {
			t.Errorf("Listen(mode %o): file mode %v, want a socket with %o", tc.mode, fi.Mode(), tc.want)
		}
		dir, err := os.Stat(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		if dir.Mode().Perm() != 0o755 {
			t.Errorf("created parent directory mode %o, want 755", dir.Mode().Perm())
		}
		if _, err := os.Lstat(path + "~"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("temporary socket name left behind: %v", err)
		}
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	path := filepath.Join(sockDir(t), "control.sock")
	// A socket file whose listener is gone, as a crashed daemon leaves it.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()

	s, err := Listen(path, 0)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, &fakeBackend{st: sampleStatus()}, zaptest.NewLogger(t)) }()
	if _, err := client(t, path).Status(ctxT(t)); err != nil {
		t.Errorf("Status() over the replaced socket: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLiveSocketRefused(t *testing.T) {
	path := serve(t, &fakeBackend{st: sampleStatus()}, 0)
	if s, err := Listen(path, 0); err == nil {
		s.Close()
		t.Fatal("Listen over a live socket succeeded")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Errorf("error %q does not say the socket is in use", err)
	}
	// The first server is untouched.
	if _, err := client(t, path).Status(ctxT(t)); err != nil {
		t.Errorf("first server after a refused Listen: %v", err)
	}
}

func TestNonSocketRefused(t *testing.T) {
	path := filepath.Join(sockDir(t), "control.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Listen(path, 0); err == nil {
		s.Close()
		t.Fatal("Listen over a regular file succeeded")
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Errorf("regular file touched: %q, %v", b, err)
	}
}

// TestCloseKeepsForeignFile checks that shutting down does not remove a
// file another process put at the path meanwhile.
func TestCloseKeepsForeignFile(t *testing.T) {
	path := filepath.Join(sockDir(t), "control.sock")
	s, err := Listen(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("foreign file removed by Close: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	path := filepath.Join(sockDir(t), "nothing.sock")
	_, err := client(t, path).Status(ctxT(t))
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("Status() without a daemon: %v, want an UnreachableError", err)
	}
	if want := "cannot reach the control socket " + path + ": no such file or directory"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("error does not unwrap to ENOENT")
	}
}

// TestNonRootClientRefused runs a client as nobody (uid 65534) against a
// 0600 socket owned by root: the kernel must refuse it with EACCES. With
// mode 0666 the same client gets in, which shows that the file mode is
// what decides.
func TestNonRootClientRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	// Both the binary and the socket must be reachable by nobody, so the
	// only obstacle left is the socket's mode.
	dir := sockDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "client")
	copyFile(t, self, bin, 0o755)

	for _, tc := range []struct {
		mode os.FileMode
		want string
	}{
		{0, "EACCES"},
		{0o666, "ok"},
	} {
		path := filepath.Join(dir, "s", "control.sock")
		s, err := Listen(path, tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx, &fakeBackend{}, zaptest.NewLogger(t)) }()

		cmd := execAs(bin, 65534, path)
		out, err := cmd.Output()
		cancel()
		<-done
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("uid 65534 connecting to a %o socket: %q, want %q", tc.mode, got, tc.want)
		}
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// execAs prepares the test binary at bin to run connectChild as uid (and
// gid) with no supplementary groups and a minimal environment.
func execAs(bin string, uid uint32, path string) *exec.Cmd {
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = []string{childEnv + "=" + path}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}},
	}
	return cmd
}

// blockingBackend's Reload waits for its context, as a slow reload would.
type blockingBackend struct {
	fakeBackend
	started chan struct{}
}

func (b *blockingBackend) Reload(ctx context.Context) server.ReloadResult {
	close(b.started)
	<-ctx.Done()
	return server.ReloadResult{Errors: []string{"cancelled"}}
}

// TestShutdownDuringReload stops the server while a reload is in flight:
// the reload's context is cancelled and Serve returns only after the
// handler did (goleak in TestMain checks that nothing is left running).
func TestShutdownDuringReload(t *testing.T) {
	path := filepath.Join(sockDir(t), "control.sock")
	s, err := Listen(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := &blockingBackend{started: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, b, zaptest.NewLogger(t)) }()

	c := client(t, path)
	reloaded := make(chan error, 1)
	go func() {
		_, err := c.Reload(ctxT(t))
		reloaded <- err
	}()
	<-b.started
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve() = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context was cancelled")
	}
	<-reloaded // either the cancelled result or a closed connection
}

// TestConcurrentClients has several clients ask at once, bounded in
// count: every answer is whole.
func TestConcurrentClients(t *testing.T) {
	path := serve(t, &fakeBackend{st: sampleStatus()}, 0)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c := Dial(path)
			defer c.Close()
			for range 25 {
				st, err := c.Status(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if len(st.Services) != len(sampleStatus().Services) {
					t.Errorf("got %d services", len(st.Services))
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkStatus is one `acceptd status` round trip over the socket,
// on a kept-alive connection.
func BenchmarkStatus(b *testing.B) {
	dir, err := os.MkdirTemp("", "acd")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := Listen(filepath.Join(dir, "c.sock"), 0)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, &fakeBackend{st: sampleStatus()}, nil) }()
	c := Dial(s.Path())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Status(ctx); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	cancel()
	<-done
}
