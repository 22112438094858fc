//go:build linux

package relay

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/internal/rawsock"
	"github.com/acceptd/acceptd/internal/testutil"
)

// dialRaw starts a non-blocking connect to addr ("tcp" 127.0.0.1:port or
// "unix" path) as the server does and reports whether it is in progress.
func dialRaw(t *testing.T, network, addr string) (fd int, connecting bool, err error) {
	t.Helper()
	var sa unix.Sockaddr
	family := unix.AF_UNIX
	if network == "tcp" {
		ap, perr := net.ResolveTCPAddr("tcp", addr)
		if perr != nil {
			t.Fatal(perr)
		}
		sa4 := &unix.SockaddrInet4{Port: ap.Port}
		copy(sa4.Addr[:], ap.IP.To4())
		sa, family = sa4, unix.AF_INET
	} else {
		sa = &unix.SockaddrUnix{Name: addr}
	}
	fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	switch err = unix.Connect(fd, sa); err {
	case nil:
		return fd, false, nil
	case unix.EINPROGRESS:
		return fd, true, nil
	}
	unix.Close(fd)
	return -1, false, err
}

// clientPair returns the test's end of a client connection and the raw
// accepted socket the engine gets.
func clientPair(t *testing.T) (net.Conn, int) {
	t.Helper()
	cl, rc := connPair(t, "tcp")
	t.Cleanup(func() { cl.Close() })
	fd, err := rawFD(rc)
	if err != nil {
		t.Fatal(err)
	}
	return cl, fd
}

// add hands a job to e and returns where its Result arrives.
func add(t *testing.T, e *Engine, j *Job) <-chan Result {
	t.Helper()
	done := make(chan Result, 1)
	j.Done = func(r Result) { done <- r }
	if err := e.Add(j); err != nil {
		t.Fatal(err)
	}
	return done
}

func waitResult(t *testing.T, done <-chan Result, d time.Duration) Result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(d):
		t.Fatalf("no result after %v", d)
		return Result{}
	}
}

// tcpJob makes a client connection and starts a raw connect to ln: the
// test's end of the client and the Job the server would add (Done unset).
func tcpJob(t *testing.T, ln net.Listener) (net.Conn, *Job) {
	t.Helper()
	cl, cfd := clientPair(t)
	bfd, connecting, err := dialRaw(t, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return cl, &Job{Client: cfd, Backend: bfd, Connecting: connecting, ConnectTimeout: 5 * time.Second}
}

// TestEngineConnectInProgress: a backend connect that has not completed
// when the job is added; the client's first bytes wait for it.
func TestEngineConnectInProgress(t *testing.T) {
	e := newEngine(t)
	ln := listen(t, "tcp")
	defer ln.Close()
	cl, j := tcpJob(t, ln)
	if _, err := cl.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	done := add(t, e, j)
	be, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(be, buf); err != nil || string(buf) != "early" {
		t.Fatalf("backend got %q, %v", buf, err)
	}
	cl.(*net.TCPConn).CloseWrite()
	if err := send(be, []byte("late answer")); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(cl); err != nil || string(got) != "late answer" {
		t.Fatalf("client got %q, %v", got, err)
	}
	if r := waitResult(t, done, 5*time.Second); r.Err != nil || r.In != 5 || r.Out != 11 || r.ConnectFailed {
		t.Errorf("result %+v", r)
	}
}

// TestEngineConnectFails: a refused connect and one that never completes
// give the client back untouched, with the reason.
func TestEngineConnectFails(t *testing.T) {
	e := newEngine(t)
	closed := listen(t, "tcp")
	refusedAddr := closed.Addr().String()
	closed.Close()
	hung := testutil.FullBacklog(t)

	for _, tc := range []struct {
		name, addr string
		want       error
	}{
		{"refused", refusedAddr, syscall.ECONNREFUSED},
		{"timeout", hung, os.ErrDeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, cfd := clientPair(t)
			bfd, connecting, err := dialRaw(t, "tcp", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			if !connecting {
				t.Fatalf("connect to %s completed at once", tc.addr)
			}
			began := time.Now()
			done := add(t, e, &Job{Client: cfd, Backend: bfd, Connecting: true, ConnectTimeout: 300 * time.Millisecond})
			r := waitResult(t, done, 5*time.Second)
			if !r.ConnectFailed || !errors.Is(r.Err, tc.want) {
				t.Fatalf("result %+v, want a failed connect: %v", r, tc.want)
			}
			if tc.name == "timeout" && time.Since(began) < 250*time.Millisecond {
				t.Errorf("timed out after %v, want about 300ms", time.Since(began))
			}
			// The client socket is the caller's again, and still open.
			if _, err := unix.Write(cfd, []byte("x")); err != nil {
				t.Fatalf("client socket after a failed connect: %v", err)
			}
			buf := make([]byte, 1)
			cl.SetReadDeadline(time.Now().Add(5 * time.Second))
			unix.Close(cfd)
			if n, err := cl.Read(buf); n != 1 {
				t.Fatalf("client read %d, %v", n, err)
			}
		})
	}
}

// TestEngineAbortAll: live relays, a connect in progress and a job added
// afterwards all end with the abort's error, their sockets closed.
func TestEngineAbortAll(t *testing.T) {
	e := newEngine(t)
	x := start(t, engineRelay{e}, "tcp", "unix", Options{})
	exchange := func() {
		if _, err := x.client.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(x.backend, buf); err != nil {
			t.Fatal(err)
		}
	}
	exchange()
	_, cfd := clientPair(t)
	bfd, _, err := dialRaw(t, "tcp", testutil.FullBacklog(t))
	if err != nil {
		t.Fatal(err)
	}
	connecting := add(t, e, &Job{Client: cfd, Backend: bfd, Connecting: true})

	stop := errors.New("stopping")
	e.AbortAll(stop)
	if r := x.wait(t, 5*time.Second); !errors.Is(r.Err, stop) || r.In != 4 {
		t.Errorf("live relay: %+v, want In=4 and the abort's error", r)
	}
	if r := waitResult(t, connecting, 5*time.Second); !errors.Is(r.Err, stop) || r.ConnectFailed {
		t.Errorf("connecting job: %+v, want the abort's error, sockets closed", r)
	}
	if err := readUntilEnd(x.client, 5*time.Second); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("client still open after AbortAll: %v", err)
	}
	_, cfd = clientPair(t)
	_, bfd = clientPair(t)
	if r := waitResult(t, add(t, e, &Job{Client: cfd, Backend: bfd}), 5*time.Second); !errors.Is(r.Err, stop) {
		t.Errorf("job added after AbortAll: %+v", r)
	}
}

// TestEngineClosed: Add after Close fails and leaves the sockets to the
// caller.
func TestEngineClosed(t *testing.T) {
	e := newEngine(t)
	e.Close()
	_, cfd := clientPair(t)
	defer unix.Close(cfd)
	if err := e.Add(&Job{Client: cfd, Backend: -1, Done: func(Result) {}}); err == nil {
		t.Fatal("Add on a closed engine succeeded")
	}
}

// TestEngineDoneMayBlock: a Done that blocks (the end of a relay is
// logged, and a stderr whose reader has stopped blocks the write) does
// not stop the other relays of its loop; their reports wait for it.
func TestEngineDoneMayBlock(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) // one loop: both relays share it
	e := newEngine(t)
	ln := listen(t, "tcp")
	defer ln.Close()
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the engine's Close, which waits for the loop
	stuck := make(chan Result, 1)
	clA, ja := tcpJob(t, ln)
	ja.Done = func(r Result) {
		stuck <- r
		<-release
	}
	if err := e.Add(ja); err != nil {
		t.Fatal(err)
	}
	beA, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	clA.Close()
	beA.Close()
	waitResult(t, stuck, 5*time.Second) // A's Done runs, and blocks

	clB, jb := tcpJob(t, ln)
	doneB := add(t, e, jb)
	beB, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer beB.Close()
	deadline := time.Now().Add(5 * time.Second)
	clB.SetDeadline(deadline)
	beB.SetDeadline(deadline)
	buf := make([]byte, 4)
	if _, err := clB.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(beB, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("backend got %q, %v while another relay's Done blocked", buf, err)
	}
	if _, err := beB.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(clB, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client got %q, %v while another relay's Done blocked", buf, err)
	}
	clB.Close()
	beB.Close()
	select {
	case r := <-doneB:
		t.Fatalf("B reported %+v before A's report returned: reports are in order", r)
	case <-time.After(50 * time.Millisecond):
	}
	unblock()
	if r := waitResult(t, doneB, 5*time.Second); r.In != 4 || r.Out != 4 {
		t.Errorf("B: %+v, want 4 bytes each way", r)
	}
}

// TestEngineOutOfDescriptors: when no splice pipe can be made (acceptd at
// RLIMIT_NOFILE), a relay copies through a buffer instead of breaking:
// every byte arrives both ways and half-closes still pass.
func TestEngineOutOfDescriptors(t *testing.T) {
	e := newEngine(t)
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	ln := listen(t, "tcp")
	defer ln.Close()
	cl, j := tcpJob(t, ln)
	be, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()

	// From here no descriptor can be made: the limit is the lowest free
	// fd number.
	free, err := unix.Dup(0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(free)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = uint64(free)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	if _, err := unix.Dup(0); !errors.Is(err, unix.EMFILE) {
		t.Fatalf("dup under the lowered limit: %v, want EMFILE", err)
	}

	done := add(t, e, j)
	up, down := payload(11, 1<<20), payload(12, 1<<20)
	type got struct {
		sum [32]byte
		n   int64
		err error
	}
	atBackend, atClient := make(chan got, 1), make(chan got, 1)
	go func() { s, n, err := recvSum(be); atBackend <- got{s, n, err} }()
	go func() { s, n, err := recvSum(cl); atClient <- got{s, n, err} }()
	errs := make(chan error, 2)
	go func() { errs <- send(cl, up) }()
	go func() { errs <- send(be, down) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		ch   chan got
		want []byte
	}{{"backend", atBackend, up}, {"client", atClient, down}} {
		g := <-c.ch
		if g.err != nil || g.n != int64(len(c.want)) || g.sum != sha256.Sum256(c.want) {
			t.Errorf("%s got %d bytes (%v), want %d intact", c.name, g.n, g.err, len(c.want))
		}
	}
	r := waitResult(t, done, 10*time.Second)
	restore()
	if r.Err != nil || r.In != 1<<20 || r.Out != 1<<20 {
		t.Errorf("result %+v", r)
	}
	if n := e.idlePipes(); n != 0 {
		t.Errorf("%d pipes made under the limit", n)
	}
}

// TestEngineIdleTimeout: bytes now and then keep a relay with an idle
// timeout open past it; silence as long as the timeout ends it, not
// earlier, with ErrIdleTimeout and the counts of what moved.
func TestEngineIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	e := newEngine(t)
	ln := listen(t, "tcp")
	defer ln.Close()
	cl, j := tcpJob(t, ln)
	j.IdleTimeout = idle
	done := add(t, e, j)
	be, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	b := make([]byte, 1)
	for range 8 { // 800 ms in all, a byte every 100 ms
		time.Sleep(idle / 3)
		if _, err := cl.Write([]byte("p")); err != nil {
			t.Fatal(err)
		}
		_ = be.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(be, b); err != nil {
			t.Fatalf("backend read after %v of traffic: %v", idle, err)
		}
	}
	start := time.Now()
	if _, err := be.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	_ = cl.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(cl)
	if err != nil || string(got) != "a" {
		t.Fatalf("client got %q, %v; want \"a\", then EOF", got, err)
	}
	if quiet := time.Since(start); quiet < idle {
		t.Errorf("relay ended after %v of silence; idle timeout %v", quiet, idle)
	}
	r := waitResult(t, done, 5*time.Second)
	if !errors.Is(r.Err, ErrIdleTimeout) || r.In != 8 || r.Out != 1 {
		t.Errorf("result %+v; want In=8 Out=1 and ErrIdleTimeout", r)
	}
}

// TestEnginePreamble: a Job's Preamble (a PROXY header) reaches the
// backend before the client's bytes, also those the client sent before
// the backend was connected, and is not counted as relayed.
func TestEnginePreamble(t *testing.T) {
	for _, kind := range []string{"tcp", "unix"} {
		t.Run(kind, func(t *testing.T) {
			e := newEngine(t)
			ln, cl, j := backendJob(t, kind)
			payload := pattern(1 << 20)
			hdr := []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\n")
			j.Preamble = hdr
			sent := make(chan error, 1)
			go func() { sent <- send(cl, payload) }()
			done := add(t, e, j)
			be, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			got := make([]byte, len(hdr))
			be.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(be, got); err != nil || string(got) != string(hdr) {
				t.Fatalf("backend's first bytes %q, %v; want the preamble", got, err)
			}
			sum, n, err := recvSum(be)
			if err != nil || n != int64(len(payload)) || sum != sha256.Sum256(payload) {
				t.Fatalf("backend got %d bytes after the preamble (%v), want the client's %d intact", n, err, len(payload))
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			if err := send(be, []byte("ok")); err != nil {
				t.Fatal(err)
			}
			if b, err := io.ReadAll(cl); err != nil || string(b) != "ok" {
				t.Fatalf("client got %q, %v", b, err)
			}
			if r := waitResult(t, done, 5*time.Second); r.Err != nil || r.In != int64(len(payload)) || r.Out != 2 {
				t.Errorf("result %+v, want In=%d Out=2", r, len(payload))
			}
		})
	}
}

// TestTimerHeap: pops come out in deadline order, after pushes and after
// init of an unordered slice (addTimer's in-place rebuild).
func TestTimerHeap(t *testing.T) {
	var h timerHeap
	ats := []int64{5, 3, 9, 1, 7, 3, 8, 2, 6, 4, 0}
	for i, at := range ats {
		h.push(timer{at: at, slot: int32(i)})
	}
	checkOrder := func(h timerHeap, n int) {
		t.Helper()
		last := int64(-1)
		for range n {
			tm := h.pop()
			if tm.at < last {
				t.Fatalf("popped %d after %d", tm.at, last)
			}
			last = tm.at
		}
		if len(h) != 0 {
			t.Fatalf("%d timers left", len(h))
		}
	}
	checkOrder(h, len(ats))
	h = h[:0]
	for _, at := range ats {
		h = append(h, timer{at: at})
	}
	h.init()
	checkOrder(h, len(ats))
}

// TestTimerRebuild: once stale deadlines outnumber the live ones, addTimer
// drops the stale ones and keeps the live ones in deadline order.
func TestTimerRebuild(t *testing.T) {
	l := &loop{}
	const n = 200
	for i := range n {
		// Every third job still connects; the others have connected,
		// so their connect deadlines are stale.
		j := &Job{gen: 1, Connecting: i%3 == 0}
		if j.Connecting {
			l.connecting++
		}
		l.jobs = append(l.jobs, j)
	}
	for i := range n {
		// Deadlines in an order that is not the slots'.
		l.addTimer(timer{at: int64((i * 7919) % n), slot: int32(i), gen: 1})
	}
	if len(l.timers) >= n {
		t.Fatalf("%d timers after %d pushes: no rebuild", len(l.timers), n)
	}
	last := int64(-1)
	live := 0
	for len(l.timers) > 0 {
		tm := l.timers.pop()
		if tm.at < last {
			t.Fatalf("popped %d after %d", tm.at, last)
		}
		last = tm.at
		if l.jobs[tm.slot].Connecting {
			live++
		}
	}
	if want := (n + 2) / 3; live != want {
		t.Fatalf("%d live deadlines kept, want %d", live, want)
	}
}

// backendJob listens on kind, makes a client connection and starts a raw
// connect to the listener: the listener, the test's end of the client and
// the Job the server would add (Done unset).
func backendJob(t *testing.T, kind string) (net.Listener, net.Conn, *Job) {
	t.Helper()
	ln := listen(t, kind)
	t.Cleanup(func() { ln.Close() })
	cl, cfd := clientPair(t)
	bfd, connecting, err := dialRaw(t, kind, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return ln, cl, &Job{Client: cfd, Backend: bfd, Connecting: connecting}
}

// pattern returns n bytes that are not all alike.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// waitInq waits until fd has at least n bytes to read.
func waitInq(t *testing.T, fd, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		q, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
		if err != nil {
			t.Fatal(err)
		}
		if q >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d bytes arrived", q, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestJobForward: Forward sends the preamble and the client's first bytes
// (up to its buffer) to a connected backend before the engine has the
// job, and the engine relays the rest after them, counting all of the
// client's bytes.
func TestJobForward(t *testing.T) {
	e := newEngine(t)
	for _, kind := range []string{"tcp", "unix"} {
		t.Run(kind, func(t *testing.T) {
			ln, cl, j := backendJob(t, kind)
			payload := pattern(10000)
			if err := send(cl, payload); err != nil {
				t.Fatal(err)
			}
			waitInq(t, j.Client, len(payload))
			for j.Connecting && !rawsock.Connected(j.Backend) {
				time.Sleep(time.Millisecond)
			}
			hdr := []byte("PROXY UNKNOWN\r\n")
			j.Preamble = hdr
			var buf [4096]byte
			j.Forward(buf[:])
			if j.Sent != int64(len(buf)) || j.Connecting || j.Preamble != nil {
				t.Fatalf("after Forward: Sent %d, Connecting %v, Preamble %q; want %d, false, none", j.Sent, j.Connecting, j.Preamble, len(buf))
			}
			be, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			// Before the engine has the job: the preamble and the first
			// 4096 bytes are at the backend already.
			first := make([]byte, len(hdr)+len(buf))
			be.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(be, first); err != nil || !bytes.Equal(first, append(hdr, payload[:len(buf)]...)) {
				t.Fatalf("backend's first %d bytes: %v; want the preamble and the client's first bytes", len(first), err)
			}
			done := add(t, e, j)
			cl.(*net.TCPConn).CloseWrite()
			sum, n, err := recvSum(be)
			if err != nil || n != int64(len(payload)-len(buf)) || sum != sha256.Sum256(payload[len(buf):]) {
				t.Fatalf("backend got %d more bytes (%v), want the client's other %d intact", n, err, len(payload)-len(buf))
			}
			be.Close()
			if r := waitResult(t, done, 5*time.Second); r.Err != nil || r.In != int64(len(payload)) {
				t.Errorf("result %+v, want In=%d", r, len(payload))
			}
		})
	}
}

// TestJobForwardWaits: Forward leaves a job alone while the connect is in
// progress (not a byte read off the client), and passes on a client's
// reset that its peek met, which the engine then ends the relay with.
func TestJobForwardWaits(t *testing.T) {
	e := newEngine(t)
	t.Run("connecting", func(t *testing.T) {
		cl, cfd := clientPair(t)
		bfd, connecting, err := dialRaw(t, "tcp", testutil.FullBacklog(t))
		if err != nil || !connecting {
			t.Fatalf("connect: %v, in progress %v", err, connecting)
		}
		defer unix.Close(bfd)
		send(cl, []byte("hello"))
		waitInq(t, cfd, 5)
		j := &Job{Client: cfd, Backend: bfd, Connecting: true, Preamble: []byte("hdr")}
		var buf [64]byte
		j.Forward(buf[:])
		if j.Sent != 0 || !j.Connecting || string(j.Preamble) != "hdr" {
			t.Fatalf("after Forward: Sent %d, Connecting %v, Preamble %q", j.Sent, j.Connecting, j.Preamble)
		}
		waitInq(t, cfd, 5)
		unix.Close(cfd)
	})
	t.Run("client reset", func(t *testing.T) {
		ln, cl, j := backendJob(t, "tcp")
		for j.Connecting && !rawsock.Connected(j.Backend) {
			time.Sleep(time.Millisecond)
		}
		cl.(*net.TCPConn).SetLinger(0)
		cl.Close() // on loopback the reset has arrived when Close returns
		var buf [64]byte
		j.Forward(buf[:])
		done := add(t, e, j)
		be, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer be.Close()
		be.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := be.Read(buf[:]); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("backend read %v; want the client's reset passed on", err)
		}
		if r := waitResult(t, done, 5*time.Second); !errors.Is(r.Err, syscall.ECONNRESET) {
			t.Errorf("result %+v, want the client's reset", r)
		}
	})
}
