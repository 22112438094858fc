package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"
)

// v2WithTLVs is a PROXY v2 header for 192.0.2.1:5555 -> 198.51.100.7:80
// whose TLVs make it longer than a v1 header can be (the first peek).
func v2WithTLVs(t *testing.T) []byte {
	t.Helper()
	v2 := &proxyproto.Header{
		Version:           2,
		Command:           proxyproto.PROXY,
		TransportProtocol: proxyproto.TCPv4,
		SourceAddr:        &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5555},
		DestinationAddr:   &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 80},
	}
	if err := v2.SetTLVs([]proxyproto.TLV{{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: bytes.Repeat([]byte("a"), 300)}}); err != nil {
		t.Fatal(err)
	}
	b, err := v2.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tcpPair returns both ends of a loopback TCP connection, closed when the
// test ends.
func tcpPair(t *testing.T) (dialed, accepted net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return c, s
}

// longestV1 is the longest TCP6 PROXY v1 header there is (104 bytes; v1
// allows 107), naming longestV1Addr at both ends.
const (
	longestV1     = "PROXY TCP6 " + ip6Longest + " " + ip6Longest + " 65535 65535\r\n"
	ip6Longest    = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
	longestV1Addr = "[" + ip6Longest + "]:65535"
)

// checkHeaderAddrs checks the client and local addresses hdr names:
// remote and local, or 192.0.2.1:5555 and 198.51.100.7:80 when remote is
// empty (the test headers' usual pair).
func checkHeaderAddrs(t *testing.T, hdr *proxyproto.Header, remote, local string) {
	t.Helper()
	if remote == "" {
		remote, local = "192.0.2.1:5555", "198.51.100.7:80"
	}
	r, l, ok := realAddrs(hdr)
	if !ok || r.String() != remote || l.String() != local {
		t.Errorf("addresses %v %v %v; want %s %s", r, l, ok, remote, local)
	}
}

// TestReadProxyHeaderPieces: readProxyHeader takes exactly the header off
// the socket, whether it arrives in pieces or with the payload, and a v2
// header longer than its first peek (TLVs) included.
func TestReadProxyHeaderPieces(t *testing.T) {
	v2b := v2WithTLVs(t)
	v1b := []byte("PROXY TCP4 192.0.2.1 198.51.100.7 5555 80\r\n")
	v1long := []byte(longestV1)
	for _, tc := range []struct {
		name   string
		pieces [][]byte
		// remote and local are the addresses the header names, when not
		// 192.0.2.1:5555 and 198.51.100.7:80.
		remote, local string
	}{
		{name: "v1 with payload", pieces: [][]byte{append(append([]byte{}, v1b...), "payload"...)}},
		{name: "v1 in two pieces", pieces: [][]byte{v1b[:10], append(append([]byte{}, v1b[10:]...), "payload"...)}},
		{name: "v1 longest, in two pieces", pieces: [][]byte{v1long[:60], append(append([]byte{}, v1long[60:]...), "payload"...)},
			remote: longestV1Addr, local: longestV1Addr},
		{name: "v2 with long TLVs", pieces: [][]byte{append(append([]byte{}, v2b...), "payload"...)}},
		{name: "v2 in three pieces", pieces: [][]byte{v2b[:10], v2b[10:200], append(append([]byte{}, v2b[200:]...), "payload"...)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t)
			go func() {
				for _, p := range tc.pieces {
					c.Write(p)
					time.Sleep(20 * time.Millisecond)
				}
				c.(*net.TCPConn).CloseWrite()
			}()
			hdr, err := readProxyHeader(s)
			if err != nil {
				t.Fatal(err)
			}
			checkHeaderAddrs(t, hdr, tc.remote, tc.local)
			rest, err := io.ReadAll(s)
			if err != nil || string(rest) != "payload" {
				t.Errorf("after the header: %q, %v; want the payload", rest, err)
			}
		})
	}
}

// TestTakeProxyHeader: on the raw accept path, takeProxyHeader takes a
// header that has all arrived (and nothing after it), reports one still
// on its way as not there yet without consuming a byte, and fails on bytes
// that cannot start one.
func TestTakeProxyHeader(t *testing.T) {
	v1b := []byte("PROXY TCP4 192.0.2.1 198.51.100.7 5555 80\r\n")
	v2b := v2WithTLVs(t)
	v1long := []byte(longestV1)
	for _, tc := range []struct {
		name        string
		first, rest []byte // rest: sent once first was found incomplete
		bad         bool
		// remote and local are the addresses the header names, when not
		// 192.0.2.1:5555 and 198.51.100.7:80.
		remote, local string
	}{
		{name: "v1 longest", first: append(append([]byte{}, v1long...), "payload"...),
			remote: longestV1Addr, local: longestV1Addr},
		{name: "v1 whole", first: append(append([]byte{}, v1b...), "payload"...)},
		{name: "v1 in two pieces", first: v1b[:20], rest: append(append([]byte{}, v1b[20:]...), "payload"...)},
		{name: "v2 with long TLVs", first: append(append([]byte{}, v2b...), "payload"...)},
		{name: "v2 in two pieces", first: v2b[:200], rest: append(append([]byte{}, v2b[200:]...), "payload"...)},
		{name: "not a header", first: []byte("GET / HTTP/1.0\r\n\r\n"), bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t)
			f, err := s.(*net.TCPConn).File()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fd := int(f.Fd())
			// take retries until the bytes sent have arrived: nil, nil
			// means "not all there", which the test must not mistake for
			// bytes in flight on loopback.
			take := func(want int) (*proxyproto.Header, error) {
				deadline := time.Now().Add(5 * time.Second)
				for {
					hdr, err := takeProxyHeader(fd)
					if hdr != nil || err != nil || time.Now().After(deadline) {
						return hdr, err
					}
					var b [512]byte
					if n, _, _ := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT); n >= want {
						return takeProxyHeader(fd)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			c.Write(tc.first)
			hdr, err := take(len(tc.first))
			if tc.bad {
				if err == nil {
					t.Fatalf("takeProxyHeader = %v, nil; want an error", hdr)
				}
				return
			}
			if tc.rest != nil {
				if hdr != nil || err != nil {
					t.Fatalf("with %d bytes of the header: %v, %v; want nil, nil", len(tc.first), hdr, err)
				}
				c.Write(tc.rest)
				hdr, err = take(len(tc.first) + len(tc.rest))
			}
			if err != nil || hdr == nil {
				t.Fatalf("takeProxyHeader = %v, %v", hdr, err)
			}
			checkHeaderAddrs(t, hdr, tc.remote, tc.local)
			c.(*net.TCPConn).CloseWrite()
			rest, err := io.ReadAll(s)
			if err != nil || string(rest) != "payload" {
				t.Errorf("after the header: %q, %v; want the payload", rest, err)
			}
		})
	}
}

// FuzzProxyHeader feeds arbitrary first bytes of a connection to the
// PROXY header framing (headerLen) and, when it says a whole header is
// there, to the parser and to what the server takes from a header: none
// may panic, and a header the framing measured must be one the parser
// reads to its end and no further (the server reads exactly that many
// bytes off the socket; the rest is the program's or backend's).
func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 198.51.100.7 5555 80\r\nGET / HTTP/1.0\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 5555 80\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("PROXY TCP4 192.0.2.1"))
	f.Add([]byte(longestV1 + "payload"))
	v2 := &proxyproto.Header{
		Version:           2,
		Command:           proxyproto.PROXY,
		TransportProtocol: proxyproto.TCPv6,
		SourceAddr:        &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5555},
		DestinationAddr:   &net.TCPAddr{IP: net.ParseIP("2001:db8::2"), Port: 80},
	}
	if b, err := v2.Format(); err == nil {
		f.Add(append(b, "payload"...))
	}
	local := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL}
	if b, err := local.Format(); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		hlen, err := headerLen(b)
		if err != nil || hlen == 0 || hlen > len(b) {
			return
		}
		hdr, err := parseHeader(b[:hlen])
		if err != nil {
			return
		}
		// With bytes after the header, the framing still ends at hlen
		// and the parser stops there too.
		more := append(b[:hlen:hlen], "tail"...)
		if n, err := headerLen(more); err != nil || n != hlen {
			t.Fatalf("framing of %q changed with bytes after it: %d, %v (was %d)", b[:hlen], n, err, hlen)
		}
		r := bytes.NewReader(more)
		br := bufio.NewReaderSize(r, maxV1Header+1)
		if _, err := proxyproto.Read(br); err != nil {
			t.Fatalf("%q parses alone but not followed by bytes: %v", b[:hlen], err)
		}
		if left := br.Buffered() + r.Len(); left != len("tail") {
			t.Fatalf("parser of %q left %d bytes of the 4 after the %d-byte header", b[:hlen], left, hlen)
		}
		ip, real := realPeerOf(hdr, netip.MustParseAddr("127.0.0.1"))
		if real != nil && ip != real.remote.Addr().Unmap() {
			t.Fatalf("real peer %v, address %v", real.remote, ip)
		}
	})
}
