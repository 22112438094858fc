package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen conn|bulk|hold|backend [flags]")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "conn":
		err = runConn(args)
	case "bulk":
		err = runBulk(args)
	case "hold":
		err = runHold(args)
	case "backend":
		err = runBackend(args)
	case "freeport":
		err = runFreePort(args)
	case "waitport":
		err = runWaitPort(args)
	case "usage":
		err = runUsage(args)
	default:
		fmt.Fprintf(os.Stderr, "loadgen: unknown command %q\n", cmd)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// splitAddr turns "unix:PATH" or "HOST:PORT" into a network and address.
func splitAddr(a string) (string, string) {
	if p, ok := strings.CutPrefix(a, "unix:"); ok {
		return "unix", p
	}
	return "tcp", a
}

func dial(addr string) (net.Conn, error) {
	network, a := splitAddr(addr)
	return net.DialTimeout(network, a, 5*time.Second)
}

// runConn makes n connections, c at a time, each: dial; send -send bytes
// (an echo request for the backend); read -expect bytes, or until EOF when
// -expect is negative (a per-connection program that writes and exits);
// close. It prints the rate and latency percentiles of dial-to-done.
func runConn(args []string) error {
	fs := flag.NewFlagSet("conn", flag.ExitOnError)
	addr := fs.String("addr", "", "address to dial")
	n := fs.Int("n", 3000, "connections in total")
	c := fs.Int("c", 8, "connections at a time")
	send := fs.Int("send", 0, "bytes to send first (first byte 'e')")
	expect := fs.Int("expect", -1, "bytes to read; <0: read until EOF and require at least one")
	maxDur := fs.Duration("max", 30*time.Second, "stop starting connections after this long")
	proxyHdr := fs.Bool("proxy-header", false, "send a PROXY v1 header before the bytes (for accept_proxy_protocol; the relay consumes it)")
	fs.Parse(args)

	msg := make([]byte, *send)
	for i := range msg {
		msg[i] = 'e'
	}
	if *proxyHdr {
		msg = append([]byte(proxyV1Hello), msg...)
	}
	deadline := time.Now().Add(*maxDur)
	var next atomic.Int64
	var errs atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, *c)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range *c {
		wg.Go(func() {
			buf := make([]byte, 4096)
			for next.Add(1) <= int64(*n) && time.Now().Before(deadline) {
				t0 := time.Now()
				if err := oneConn(*addr, msg, *expect, buf); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds())
	}
	fmt.Printf("ok=%d err=%d secs=%.3f rate=%.0f p50_us=%.0f p99_us=%.0f\n",
		len(all), errs.Load(), elapsed.Seconds(), float64(len(all))/elapsed.Seconds(), pct(0.50), pct(0.99))
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(os.Stderr, "loadgen conn %s: first error: %s\n", *addr, e)
	}
	return nil
}

// proxyV1Hello is the PROXY v1 header conn and hold send with
// -proxy-header: a client from the documentation ranges.
const proxyV1Hello = "PROXY TCP4 192.0.2.1 198.51.100.1 1000 443\r\n"

func oneConn(addr string, msg []byte, expect int, buf []byte) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if len(msg) > 0 {
		if _, err := c.Write(msg); err != nil {
			return err
		}
	}
	if expect >= 0 {
		if _, err := io.ReadFull(c, buf[:expect]); err != nil {
			return fmt.Errorf("read %d bytes: %w", expect, err)
		}
		return nil
	}
	got := 0
	for {
		k, err := c.Read(buf)
		got += k
		if errors.Is(err, io.EOF) {
			if got == 0 {
				return errors.New("EOF before any byte")
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// runBulk moves bytes through -streams connections for -secs seconds:
// "up" sends to the backend's sink, which reports how much it received;
// "down" reads what the backend's source sends. It prints bytes/s.
func runBulk(args []string) error {
	fs := flag.NewFlagSet("bulk", flag.ExitOnError)
	addr := fs.String("addr", "", "address to dial")
	streams := fs.Int("streams", 1, "parallel connections")
	secs := fs.Float64("secs", 3, "seconds to send")
	dir := fs.String("dir", "up", "up (client to backend) or down")
	fs.Parse(args)

	conns := make([]net.Conn, *streams)
	for i := range conns {
		c, err := dial(*addr)
		if err != nil {
			return err
		}
		defer c.Close()
		cmd := byte('u')
		if *dir == "down" {
			cmd = 'd'
		}
		if _, err := c.Write([]byte{cmd}); err != nil {
			return err
		}
		conns[i] = c
	}
	var total atomic.Int64
	errc := make(chan error, *streams)
	start := time.Now()
	stop := start.Add(time.Duration(*secs * float64(time.Second)))
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.SetDeadline(stop.Add(30 * time.Second))
			buf := make([]byte, 256<<10)
			if *dir == "down" {
				var n int64
				for time.Now().Before(stop) {
					k, err := c.Read(buf)
					n += int64(k)
					if err != nil {
						errc <- err
						break
					}
				}
				total.Add(n)
				return
			}
			for time.Now().Before(stop) {
				if _, err := c.Write(buf); err != nil {
					errc <- err
					return
				}
			}
			// The data is all zeros; one 0xff byte ends it. A half-close
			// would be simpler, but socket-proxyd does not forward it.
			if _, err := c.Write([]byte{0xff}); err != nil {
				errc <- err
				return
			}
			// The sink's count is what really arrived.
			var cnt [8]byte
			if _, err := io.ReadFull(c, cnt[:]); err != nil {
				errc <- fmt.Errorf("read count: %w", err)
				return
			}
			total.Add(int64(binary.BigEndian.Uint64(cnt[:])))
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	for err := range errc {
		return err
	}
	fmt.Printf("bytes=%d secs=%.3f rate_MBps=%.0f\n", total.Load(), elapsed.Seconds(), float64(total.Load())/elapsed.Seconds()/1e6)
	return nil
}

// runHold opens -n connections, checks each carries a byte both ways, and
// holds them idle until SIGTERM/SIGINT or -max, then closes them all.
// It prints "ready N" once they are all open.
func runHold(args []string) error {
	fs := flag.NewFlagSet("hold", flag.ExitOnError)
	addr := fs.String("addr", "", "address to dial")
	n := fs.Int("n", 1000, "connections to hold")
	par := fs.Int("c", 32, "connections opened at a time")
	maxDur := fs.Duration("max", 120*time.Second, "hold at most this long")
	proxyHdr := fs.Bool("proxy-header", false, "send a PROXY v1 header first (for accept_proxy_protocol)")
	fs.Parse(args)

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	hello := []byte("ex")
	if *proxyHdr {
		hello = []byte(proxyV1Hello + "ex")
	}
	conns := make([]net.Conn, *n)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range *par {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= *n || firstErr.Load() != nil {
					return
				}
				c, err := dial(*addr)
				if err == nil {
					var b [2]byte
					c.SetDeadline(time.Now().Add(10 * time.Second))
					if _, err = c.Write(hello); err == nil {
						_, err = io.ReadFull(c, b[:])
					}
					c.SetDeadline(time.Time{})
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("connection %d: %w", i, err))
					if c != nil {
						c.Close()
					}
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if e := firstErr.Load(); e != nil {
		return e.(error)
	}
	fmt.Printf("ready %d\n", *n)
	t := time.NewTimer(*maxDur)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return nil
}

// runBackend serves the echo, sink and source commands on every -listen
// address until SIGTERM/SIGINT.
func runBackend(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	var addrs []string
	fs.Func("listen", "address to listen on (repeatable)", func(s string) error { addrs = append(addrs, s); return nil })
	fs.Parse(args)

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	var lns []net.Listener
	for _, a := range addrs {
		network, addr := splitAddr(a)
		if network == "unix" {
			os.Remove(addr)
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					// Out of fds and the like: do not spin.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				go serveBackend(c)
			}
		}()
	}
	<-ctx.Done()
	for _, ln := range lns {
		ln.Close()
	}
	return nil
}

func serveBackend(c net.Conn) {
	defer c.Close()
	var cmd [1]byte
	if _, err := io.ReadFull(c, cmd[:]); err != nil {
		return
	}
	if cmd[0] == '\r' || cmd[0] == 'P' {
		// A PROXY header first (a relay with proxy_protocol): skip it.
		var err error
		if cmd[0], err = skipProxyHeader(c, cmd[0]); err != nil {
			return
		}
	}
	switch cmd[0] {
	case 'e':
		if _, err := c.Write(cmd[:]); err != nil {
			return
		}
		// Not io.Copy(c, c): that splices through a pipe it holds while
		// the connection idles, 3 fds per held connection instead of 1.
		io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 4096))
	case 'u':
		// Zeros until a 0xff byte, which is the last byte the client
		// sends: it can only end a read.
		buf := make([]byte, 256<<10)
		var n int64
		for {
			k, err := c.Read(buf)
			n += int64(k)
			if k > 0 && buf[k-1] == 0xff {
				break
			}
			if err != nil {
				return
			}
		}
		var cnt [8]byte
		binary.BigEndian.PutUint64(cnt[:], uint64(n-1))
		c.Write(cnt[:])
		io.Copy(io.Discard, c)
	case 'd':
		buf := make([]byte, 256<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}
}

// runFreePort prints -n TCP ports of 127.0.0.1 that were free a moment
// ago, for peers that take a fixed port on their command line.
func runFreePort(args []string) error {
	fs := flag.NewFlagSet("freeport", flag.ExitOnError)
	n := fs.Int("n", 1, "how many ports")
	fs.Parse(args)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range *n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

// runWaitPort waits up to -max for every argument address to accept a
// connection.
func runWaitPort(args []string) error {
	fs := flag.NewFlagSet("waitport", flag.ExitOnError)
	maxDur := fs.Duration("max", 10*time.Second, "give up after this long")
	fs.Parse(args)
	deadline := time.Now().Add(*maxDur)
	for _, a := range fs.Args() {
		for {
			c, err := dial(a)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: %w", a, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// runUsage prints "PSS_KIB FDS PIPES" summed over -pid and all its
// descendants (socat forks one process per connection), from one pass
// over /proc.
func runUsage(args []string) error {
	fs := flag.NewFlagSet("usage", flag.ExitOnError)
	root := fs.Int("pid", 0, "process whose tree to measure")
	fs.Parse(args)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The fields after the command name, which is in parentheses
		// and may hold anything: state, ppid, ...
		rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	var pss, fds, pipes int
	todo := []int{*root}
	for len(todo) > 0 {
		pid := todo[len(todo)-1]
		todo = append(todo[:len(todo)-1], children[pid]...)
		dir := "/proc/" + strconv.Itoa(pid)
		if b, err := os.ReadFile(dir + "/smaps_rollup"); err == nil {
			for line := range strings.Lines(string(b)) {
				if v, ok := strings.CutPrefix(line, "Pss:"); ok {
					k, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
					pss += k
					break
				}
			}
		}
		fdEnts, _ := os.ReadDir(dir + "/fd")
		fds += len(fdEnts)
		for _, fe := range fdEnts {
			if l, err := os.Readlink(filepath.Join(dir, "fd", fe.Name())); err == nil && strings.HasPrefix(l, "pipe:") {
				pipes++
			}
		}
	}
	fmt.Println(pss, fds, pipes)
	return nil
}

// skipProxyHeader reads the rest of a PROXY v1 ("P...\r\n") or v2 ("\r"
// + 15 bytes + length) header whose first byte was first, one byte at a
// time where the length is not known, and returns the byte after it.
func skipProxyHeader(c net.Conn, first byte) (byte, error) {
	var b [1]byte
	if first == 'P' {
		for prev := first; ; {
			if _, err := io.ReadFull(c, b[:]); err != nil {
				return 0, err
			}
			if prev == '\r' && b[0] == '\n' {
				break
			}
			prev = b[0]
		}
	} else {
		var h [15]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return 0, err
		}
		if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint16(h[13:]))); err != nil {
			return 0, err
		}
	}
	_, err := io.ReadFull(c, b[:])
	return b[0], err
}
