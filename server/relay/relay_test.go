package relay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fdCounts returns the number of open fds and how many are pipes.
func fdCounts(t testing.TB) (all, pipes int) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(l, "pipe:") {
			pipes++
		}
	}
	return len(ents), pipes
}

// newRelayer returns a Relayer whose pipes and the test's sockets must all
// be closed when the test ends: the fd count comes back to where it was.
func newRelayer(t *testing.T) *Relayer {
	t.Helper()
	before, basePipes := fdCounts(t)
	r := New()
	t.Cleanup(func() {
		// While relays are done but the Relayer is open, every pipe fd
		// of ours is in the pool: none leaked.
		_, pipes := fdCounts(t)
		if idle := r.pipes.idle(); pipes-basePipes != 2*idle {
			t.Errorf("pool holds %d pipes but %d pipe fds are open", idle, pipes-basePipes)
		}
		r.Close()
		deadline := time.Now().Add(2 * time.Second)
		for {
			after, _ := fdCounts(t)
			if after <= before {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("fds: %d before, %d after", before, after)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	return r
}

// eachPath runs f as a subtest for each data path: the Relayer and,
// on Linux, the Engine.
func eachPath(t *testing.T, f func(t *testing.T, r relayFunc)) {
	t.Run("relayer", func(t *testing.T) { f(t, newRelayer(t)) })
	t.Run("engine", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("the engine is Linux only")
		}
		f(t, engineRelay{newEngine(t)})
	})
}

// newEngine returns an Engine that, like newRelayer's Relayer, must leave
// no fd behind once closed.
func newEngine(t *testing.T) *Engine {
	t.Helper()
	before, basePipes := fdCounts(t)
	e := NewEngine()
	t.Cleanup(func() {
		_, pipes := fdCounts(t)
		if idle := e.idlePipes(); pipes-basePipes != 2*idle {
			t.Errorf("pools hold %d pipes but %d pipe fds are open", idle, pipes-basePipes)
		}
		e.Close()
		if after, _ := fdCounts(t); after > before {
			t.Errorf("fds: %d before, %d after", before, after)
		}
	})
	return e
}

// engineRelay runs a relay on an Engine the way the server does: raw
// sockets in, Done out. ctx and opt are not the Engine's business (the
// server uses AbortAll for shutdown, and Relay for idle timeouts).
type engineRelay struct{ e *Engine }

func (er engineRelay) Relay(_ context.Context, client, backend net.Conn, _ Options) Result {
	cfd, err := rawFD(client)
	if err != nil {
		backend.Close()
		return Result{Err: err}
	}
	bfd, err := rawFD(backend)
	if err != nil {
		unix.Close(cfd)
		return Result{Err: err}
	}
	done := make(chan Result, 1)
	if err := er.e.Add(&Job{Client: cfd, Backend: bfd, Done: func(r Result) { done <- r }}); err != nil {
		unix.Close(cfd)
		unix.Close(bfd)
		return Result{Err: err}
	}
	return <-done
}

// rawFD takes c's socket out of the net package: a close-on-exec
// duplicate (non-blocking, as the file description is shared) and c
// closed.
func rawFD(c net.Conn) (int, error) {
	defer c.Close()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := rc.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) })
	if cerr != nil {
		return -1, cerr
	}
	return fd, err
}

// listen returns a listener of kind "tcp" (127.0.0.1) or "unix" (short
// temp dir).
func listen(t testing.TB, kind string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	switch kind {
	case "tcp":
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	case "unix":
		ln, err = net.Listen("unix", filepath.Join(testutil.ShortDir(t), "s"))
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// connPair returns the two ends of one connection over a fresh listener:
// dialed and accepted.
func connPair(t testing.TB, kind string) (dialed, accepted net.Conn) {
	t.Helper()
	ln := listen(t, kind)
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	d, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		t.Fatal(a.err)
	}
	return d, a.c
}

// relayFunc is a data path under test: Relayer.Relay, or the Engine
// behind engineRelay.
type relayFunc interface {
	Relay(ctx context.Context, client, backend net.Conn, opt Options) Result
}

// relayed is one relayed connection under test: the test holds client and
// backend, the relay runs in between.
type relayed struct {
	client, backend net.Conn
	done            chan Result
	cancel          context.CancelFunc
}

// start relays a front (client side) connection of kind front to a
// backend connection of kind back.
func start(t *testing.T, r relayFunc, front, back string, opt Options) *relayed {
	t.Helper()
	cl, rc := connPair(t, front)
	rb, be := connPair(t, back)
	ctx, cancel := context.WithCancel(context.Background())
	x := &relayed{client: cl, backend: be, done: make(chan Result, 1), cancel: cancel}
	go func() { x.done <- r.Relay(ctx, rc, rb, opt) }()
	t.Cleanup(func() {
		cancel()
		cl.Close()
		be.Close()
		select {
		case <-x.done:
		case <-time.After(5 * time.Second):
			t.Error("relay did not end after cancel")
		}
	})
	return x
}

// wait returns the relay's result or fails after d.
func (x *relayed) wait(t *testing.T, d time.Duration) Result {
	t.Helper()
	select {
	case res := <-x.done:
		x.done <- res // for the cleanup
		return res
	case <-time.After(d):
		t.Fatalf("relay still running after %v", d)
		return Result{}
	}
}

func payload(seed uint64, n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// send writes p and shuts down the write half.
func send(c net.Conn, p []byte) error {
	if _, err := c.Write(p); err != nil {
		return err
	}
	return c.(interface{ CloseWrite() error }).CloseWrite()
}

// recvSum reads to EOF and returns the SHA-256 and length of what came.
func recvSum(c net.Conn) ([32]byte, int64, error) {
	h := sha256.New()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(h, c)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, n, err
}

func TestHalfCloseMatrix(t *testing.T) {
	kinds := []struct{ front, back string }{{"tcp", "tcp"}, {"tcp", "unix"}, {"unix", "tcp"}}
	sizes := []int{0, 1, 1 << 20}
	orders := []string{"client-first", "backend-first", "simultaneous"}
	eachPath(t, func(t *testing.T, r relayFunc) {
		for _, k := range kinds {
			for _, size := range sizes {
				for _, order := range orders {
					name := fmt.Sprintf("%s-%s/%dB/%s", k.front, k.back, size, order)
					t.Run(name, func(t *testing.T) {
						testHalfClose(t, r, k.front, k.back, size, order)
					})
				}
			}
		}
	})
}

func testHalfClose(t *testing.T, r relayFunc, front, back string, size int, order string) {
	x := start(t, r, front, back, Options{})
	up, down := payload(1, size), payload(2, size)
	// Different lengths catch a mixed-up direction even at equal content.
	if size > 0 {
		down = down[:size-size/3]
	}
	wantUp, wantDown := sha256.Sum256(up), sha256.Sum256(down)

	check := func(who string, got [32]byte, n int64, err error, want [32]byte, wantN int) {
		t.Helper()
		if err != nil {
			t.Errorf("%s read: %v", who, err)
		}
		if n != int64(wantN) || got != want {
			t.Errorf("%s got %d bytes (sha %x), want %d (sha %x)", who, n, got[:4], wantN, want[:4])
		}
	}
	switch order {
	case "client-first":
		// The client sends and shuts its write half; the backend sees
		// EOF and still answers.
		errc := make(chan error, 1)
		go func() { errc <- send(x.client, up) }()
		sum, n, err := recvSum(x.backend)
		check("backend", sum, n, err, wantUp, len(up))
		if err := <-errc; err != nil {
			t.Fatalf("client send: %v", err)
		}
		go func() { errc <- send(x.backend, down) }()
		sum, n, err = recvSum(x.client)
		check("client", sum, n, err, wantDown, len(down))
		if err := <-errc; err != nil {
			t.Fatalf("backend send: %v", err)
		}
	case "backend-first":
		errc := make(chan error, 1)
		go func() { errc <- send(x.backend, down) }()
		sum, n, err := recvSum(x.client)
		check("client", sum, n, err, wantDown, len(down))
		if err := <-errc; err != nil {
			t.Fatalf("backend send: %v", err)
		}
		go func() { errc <- send(x.client, up) }()
		sum, n, err = recvSum(x.backend)
		check("backend", sum, n, err, wantUp, len(up))
		if err := <-errc; err != nil {
			t.Fatalf("client send: %v", err)
		}
	case "simultaneous":
		errc := make(chan error, 2)
		go func() { errc <- send(x.client, up) }()
		go func() { errc <- send(x.backend, down) }()
		type got struct {
			sum [32]byte
			n   int64
			err error
		}
		bc := make(chan got, 1)
		go func() {
			s, n, err := recvSum(x.backend)
			bc <- got{s, n, err}
		}()
		sum, n, err := recvSum(x.client)
		check("client", sum, n, err, wantDown, len(down))
		b := <-bc
		check("backend", b.sum, b.n, b.err, wantUp, len(up))
		for range 2 {
			if err := <-errc; err != nil {
				t.Fatalf("send: %v", err)
			}
		}
	}
	res := x.wait(t, 5*time.Second)
	if res.Err != nil || res.In != int64(len(up)) || res.Out != int64(len(down)) {
		t.Errorf("result %+v, want In=%d Out=%d Err=nil", res, len(up), len(down))
	}
}

// reset closes c with SO_LINGER 0 so its peer gets an RST.
func reset(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// readUntilEnd reads c until an error and returns it (io.EOF for EOF).
func readUntilEnd(c net.Conn, d time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			return err
		}
	}
}

// streamUntilError writes to c until a write fails or stop is closed.
func streamUntilError(c net.Conn, stop <-chan struct{}) error {
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
}

func TestResetMidTransfer(t *testing.T) {
	cases := []struct {
		name    string
		back    string
		resetBy string // "client" or "backend"
		upload  bool   // data flows client -> backend (else backend -> client)
	}{
		{"client-resets-upload", "tcp", "client", true},
		{"client-resets-download", "tcp", "client", false},
		{"backend-resets-upload", "tcp", "backend", true},
		{"backend-resets-download", "tcp", "backend", false},
		{"client-resets-upload-unix-backend", "unix", "client", true},
	}
	eachPath(t, func(t *testing.T, r relayFunc) { testResetMidTransfer(t, r, cases) })
}

func testResetMidTransfer(t *testing.T, r relayFunc, cases []struct {
	name    string
	back    string
	resetBy string
	upload  bool
}) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := start(t, r, "tcp", tc.back, Options{})
			sender, receiver := x.client, x.backend
			if !tc.upload {
				sender, receiver = x.backend, x.client
			}
			stop := make(chan struct{})
			defer close(stop)
			sendc := make(chan error, 1)
			go func() { sendc <- streamUntilError(sender, stop) }()
			// Let data flow, then reset mid-transfer.
			buf := make([]byte, 1<<20)
			if _, err := io.ReadFull(receiver, buf); err != nil {
				t.Fatalf("first MiB: %v", err)
			}
			victim, other := x.client, x.backend
			if tc.resetBy == "backend" {
				victim, other = x.backend, x.client
			}
			if other == receiver {
				// The other side keeps reading: it must see the end.
				go func() { _, _ = io.Copy(io.Discard, receiver) }()
			}
			reset(t, victim)

			res := x.wait(t, 5*time.Second)
			if !isReset(res.Err) {
				t.Errorf("result error %v, want a reset", res.Err)
			}
			// The other leg is closed: reads end and writes fail.
			if other == receiver {
				return
			}
			if err := readUntilEnd(other, 5*time.Second); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("other leg still open: %v", err)
			}
			// (That a client reset reaches the backend as a reset, not a
			// clean EOF: TestClientResetForwardedAsReset.)
		})
	}
}

func TestClientResetForwardedAsReset(t *testing.T) {
	eachPath(t, testClientResetForwardedAsReset)
}

func testClientResetForwardedAsReset(t *testing.T, r relayFunc) {
	x := start(t, r, "tcp", "tcp", Options{})
	if _, err := x.client.Write([]byte("partial request")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 15)
	if _, err := io.ReadFull(x.backend, buf); err != nil {
		t.Fatal(err)
	}
	reset(t, x.client)
	err := readUntilEnd(x.backend, 5*time.Second)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("backend read: %v, want ECONNRESET (a truncated stream must not look complete)", err)
	}
	if res := x.wait(t, 5*time.Second); !errors.Is(res.Err, syscall.ECONNRESET) {
		t.Errorf("result %v, want ECONNRESET", res.Err)
	}
}

func TestBackendNeverReads(t *testing.T) {
	eachPath(t, testBackendNeverReads)
}

func testBackendNeverReads(t *testing.T, r relayFunc) {
	_, basePipes := fdCounts(t)
	x := start(t, r, "tcp", "tcp", Options{})
	// Write until the relay pushes back: what it buffers is bounded by
	// socket buffers and one pipe.
	const limit = 256 << 20
	buf := make([]byte, 256<<10)
	total := 0
	for total < limit {
		_ = x.client.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := x.client.Write(buf)
		total += n
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if total >= limit {
		t.Fatalf("relay accepted %d bytes for a backend that never reads", total)
	}
	t.Logf("buffered %d KiB before push-back", total>>10)
	if _, pipes := fdCounts(t); pipes-basePipes > 2+2*idlePipes(r) {
		t.Errorf("%d pipe fds open, want at most one pipe held by the stuck direction", pipes)
	}
	// The server's way of ending a stuck relay: the context for Relay,
	// AbortAll for the Engine.
	if er, ok := r.(engineRelay); ok {
		er.e.AbortAll(context.Canceled)
	} else {
		x.cancel()
	}
	if res := x.wait(t, 5*time.Second); !errors.Is(res.Err, context.Canceled) {
		t.Errorf("result %v, want context.Canceled", res.Err)
	}
}

// idlePipes is how many empty pipes r's pools hold.
func idlePipes(r relayFunc) int {
	if er, ok := r.(engineRelay); ok {
		return er.e.idlePipes()
	}
	return r.(*Relayer).pipes.idle()
}

func TestIdleTimeout(t *testing.T) {
	r := newRelayer(t)
	const idle = 200 * time.Millisecond
	x := start(t, r, "tcp", "unix", Options{IdleTimeout: idle})
	// Traffic every idle/4 keeps it alive for well over the timeout.
	b := []byte{1}
	for range 8 {
		if _, err := x.client.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(x.backend, b); err != nil {
			t.Fatal(err)
		}
		time.Sleep(idle / 4)
	}
	select {
	case res := <-x.done:
		t.Fatalf("relay ended while active: %+v", res)
	default:
	}
	began := time.Now()
	res := x.wait(t, 5*time.Second)
	if !errors.Is(res.Err, ErrIdleTimeout) || res.In != 8 {
		t.Errorf("result %+v, want In=8 and ErrIdleTimeout", res)
	}
	if quiet := time.Since(began); quiet < idle/2 {
		t.Errorf("ended after %v of silence, want about %v", quiet, idle)
	}
	if err := readUntilEnd(x.client, 2*time.Second); err != io.EOF {
		t.Errorf("client read after idle timeout: %v, want EOF", err)
	}
}

func TestContextCancel(t *testing.T) {
	r := newRelayer(t)
	x := start(t, r, "unix", "tcp", Options{})
	if _, err := x.client.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	if _, err := io.ReadFull(x.backend, b); err != nil {
		t.Fatal(err)
	}
	x.cancel()
	res := x.wait(t, 5*time.Second)
	if !errors.Is(res.Err, context.Canceled) || res.In != 2 {
		t.Errorf("result %+v, want In=2 and context.Canceled", res)
	}
	for _, c := range []net.Conn{x.client, x.backend} {
		if err := readUntilEnd(c, 2*time.Second); err != io.EOF {
			t.Errorf("read after cancel: %v, want EOF", err)
		}
	}
}

func TestCanceledBeforeStart(t *testing.T) {
	r := newRelayer(t)
	cl, rc := connPair(t, "tcp")
	rb, be := connPair(t, "tcp")
	defer cl.Close()
	defer be.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res := r.Relay(ctx, rc, rb, Options{}); !errors.Is(res.Err, context.Canceled) {
		t.Errorf("result %+v, want context.Canceled", res)
	}
	if err := readUntilEnd(cl, 2*time.Second); err != io.EOF {
		t.Errorf("client read: %v, want EOF", err)
	}
}

// wrapped hides the conn's type, forcing the generic copy, but keeps
// CloseWrite so half-close still works.
type wrapped struct{ net.Conn }

func (w wrapped) CloseWrite() error { return w.Conn.(closeWriter).CloseWrite() }

func TestGenericFallback(t *testing.T) {
	r := newRelayer(t)
	cl, rc := connPair(t, "tcp")
	rb, be := connPair(t, "unix")
	defer cl.Close()
	defer be.Close()
	done := make(chan Result, 1)
	go func() { done <- r.Relay(context.Background(), wrapped{rc}, rb, Options{}) }()

	up, down := payload(3, 1<<20), payload(4, 777)
	errc := make(chan error, 1)
	go func() { errc <- send(cl, up) }()
	got, _, err := recvSum(be)
	if err != nil || got != sha256.Sum256(up) {
		t.Fatalf("backend got wrong data (err %v)", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := send(be, down); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(cl)
	if err != nil || !bytes.Equal(all, down) {
		t.Fatalf("client got %d bytes (err %v), want %d", len(all), err, len(down))
	}
	select {
	case res := <-done:
		if res.Err != nil || res.In != int64(len(up)) || res.Out != int64(len(down)) {
			t.Errorf("result %+v", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("relay did not end")
	}
}

// TestManyConcurrent runs relays side by side sharing one pool, so pipes
// really go back and forth between connections.
func TestManyConcurrent(t *testing.T) {
	eachPath(t, testManyConcurrent)
}

func testManyConcurrent(t *testing.T, r relayFunc) {
	const n = 16
	xs := make([]*relayed, n)
	for i := range xs {
		back := "tcp"
		if i%2 == 1 {
			back = "unix"
		}
		xs[i] = start(t, r, "tcp", back, Options{})
	}
	errc := make(chan error, 2*n)
	for i, x := range xs {
		up := payload(uint64(10+i), 256<<10+i)
		go func() { errc <- send(x.client, up) }()
		go func() {
			sum, _, err := recvSum(x.backend)
			if err == nil && sum != sha256.Sum256(up) {
				err = fmt.Errorf("relay %d: checksum mismatch", i)
			}
			if err == nil {
				err = send(x.backend, up[:i])
			}
			errc <- err
		}()
	}
	for range 2 * n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for i, x := range xs {
		got, err := io.ReadAll(x.client)
		if err != nil || len(got) != i {
			t.Fatalf("relay %d: client got %d bytes, err %v", i, len(got), err)
		}
		if res := x.wait(t, 5*time.Second); res.Err != nil {
			t.Errorf("relay %d: %v", i, res.Err)
		}
	}
}

func TestOldDeadlineCleared(t *testing.T) {
	r := newRelayer(t)
	cl, rc := connPair(t, "tcp")
	rb, be := connPair(t, "tcp")
	defer cl.Close()
	defer be.Close()
	// The server may have used a deadline before handing the conn over.
	_ = rc.SetReadDeadline(time.Now().Add(time.Millisecond))
	done := make(chan Result, 1)
	go func() { done <- r.Relay(context.Background(), rc, rb, Options{}) }()
	time.Sleep(50 * time.Millisecond)
	if err := send(cl, []byte("late")); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(be); err != nil || string(got) != "late" {
		t.Fatalf("backend got %q, %v", got, err)
	}
	be.(*net.TCPConn).CloseWrite()
	if res := <-done; res.Err != nil || res.In != 4 {
		t.Errorf("result %+v", res)
	}
}
