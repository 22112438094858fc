package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"
)

// proxyHeaderTimeout bounds how long a client may take to send its PROXY
// header; a load balancer sends it at once.
const proxyHeaderTimeout = 5 * time.Second

// v2sig is the PROXY protocol v2 signature.
var v2sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

var errNotProxy = errors.New("no PROXY protocol header")

// maxV1Header is the longest PROXY v1 header, CRLF included.
const maxV1Header = 107

// headerLen returns the length of the PROXY header at the start of b, 0
// when more bytes are needed, or an error when b cannot start one.
func headerLen(b []byte) (int, error) {
	switch {
	case len(b) >= 1 && b[0] == 'P':
		if !bytes.HasPrefix(b, []byte("PROXY ")[:min(len(b), 6)]) {
			return 0, errNotProxy
		}
		if i := bytes.Index(b, []byte("\r\n")); i >= 0 {
			return i + 2, nil
		}
		if len(b) >= maxV1Header {
			return 0, errors.New("PROXY v1 header too long")
		}
		return 0, nil
	case len(b) >= 1 && b[0] == '\r':
		if !bytes.HasPrefix(b, v2sig[:min(len(b), len(v2sig))]) {
			return 0, errNotProxy
		}
		if len(b) < 16 {
			return 0, nil
		}
		return 16 + int(binary.BigEndian.Uint16(b[14:16])), nil
	case len(b) == 0:
		return 0, nil
	}
	return 0, errNotProxy
}

// readProxyHeader takes the PROXY header off the front of c, and nothing
// more: the bytes after it stay in the socket for the program or backend
// (an inetd child reads its stdin directly, so no buffer may hold them).
// It waits, up to proxyHeaderTimeout, until takeProxyHeader finds the
// whole header there.
func readProxyHeader(c net.Conn) (*proxyproto.Header, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, errors.New("connection has no descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(proxyHeaderTimeout))
	defer c.SetReadDeadline(time.Time{})
	var hdr *proxyproto.Header
	var herr error
	err = rc.Read(func(fd uintptr) bool {
		hdr, herr = takeProxyHeader(int(fd))
		return herr != nil || hdr != nil
	})
	if err != nil {
		return nil, fmt.Errorf("read PROXY header: %w", err)
	}
	return hdr, herr
}

// peekHeader peeks at the socket fd, without waiting, for a whole PROXY
// header and returns its bytes: a prefix of buf, or of a larger buffer
// for a v2 header with TLVs that buf cannot hold. It returns nil and no
// error when the header has not all arrived yet.
//
// Peek no more than a header can need: a v1 header fits in maxV1Header
// bytes, and a v2 header says its length in its first 16. (A 64 KiB
// buffer per connection, copied into by every peek, cost more than the
// relaying of a short connection.)
func peekHeader(fd int, buf []byte) ([]byte, error) {
	for {
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return nil, nil
		case err != nil:
			return nil, err
		case n == 0:
			return nil, io.ErrUnexpectedEOF
		}
		hlen, err := headerLen(buf[:n])
		switch {
		case err != nil:
			return nil, err
		case hlen > len(buf):
			buf = make([]byte, hlen)
		case hlen == 0 || n < hlen:
			return nil, nil
		default:
			return buf[:hlen], nil
		}
	}
}

// parseHeader parses b, a whole PROXY header as peekHeader returns it.
func parseHeader(b []byte) (*proxyproto.Header, error) {
	// The v1 parser takes a header only if its buffered reader holds all
	// of it after one fill (its defence against slow senders), so the
	// buffer must fit the longest v1 header; v2 reads through.
	hdr, err := proxyproto.Read(bufio.NewReaderSize(bytes.NewReader(b), maxV1Header+1))
	if err != nil {
		return nil, fmt.Errorf("parse PROXY header: %w", err)
	}
	return hdr, nil
}

// takeProxyHeader takes the PROXY header off a raw accepted socket when it
// has all arrived, which it usually has by the time a busy accept loop
// gets to the connection (a load balancer sends it with its first
// packet): one peek and one read, and the connection stays on the raw
// path. It returns the parsed header, or nil and no error when the header
// is not all there yet.
func takeProxyHeader(fd int) (*proxyproto.Header, error) {
	var buf [maxV1Header]byte
	b, err := peekHeader(fd, buf[:])
	if b == nil || err != nil {
		if err != nil {
			err = fmt.Errorf("read PROXY header: %w", err)
		}
		return nil, err
	}
	hdr, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	// The bytes are there (peeked): this read takes exactly them.
	for {
		n, err := unix.Read(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read PROXY header: %w", err)
		}
		if n != len(b) {
			return nil, fmt.Errorf("read PROXY header: %d of its %d bytes", n, len(b))
		}
		return hdr, nil
	}
}

// realAddrs returns the client and local addresses a PROXY header
// declares; ok is false for a LOCAL command or an address family other
// than TCP over IPv4/IPv6, when the connection's own addresses stand.
func realAddrs(h *proxyproto.Header) (remote, local netip.AddrPort, ok bool) {
	if h.Command.IsLocal() {
		return remote, local, false
	}
	src, dst, ok := h.TCPAddrs()
	if !ok {
		return remote, local, false
	}
	return src.AddrPort(), dst.AddrPort(), true
}

// realPeerOf is the client a PROXY header names and its address, or
// remoteIP and nil when the header names none (LOCAL, not TCP over IP).
func realPeerOf(hdr *proxyproto.Header, remoteIP netip.Addr) (netip.Addr, *realPeer) {
	r, l, ok := realAddrs(hdr)
	if !ok {
		return remoteIP, nil
	}
	return r.Addr().Unmap(), &realPeer{remote: r, local: l}
}
