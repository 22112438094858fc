package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/acceptd/acceptd/internal/testutil"
)

// proxyProtoBackend listens on network/address behind go-proxyproto with
// the header required, and answers every connection with one line, "v<version>
// <source> <destination>" as the header told it (or "error ..."), then
// echoes.
func proxyProtoBackend(t *testing.T, network, address string) *testBackend {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	pl := &proxyproto.Listener{
		Listener:          ln,
		ReadHeaderTimeout: 10 * time.Second,
		ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			return proxyproto.REQUIRE, nil
		},
	}
	return serveBackend(t, pl, func(c net.Conn) {
		pc, ok := c.(*proxyproto.Conn)
		if !ok {
			fmt.Fprintf(c, "error: not a proxyproto.Conn\n")
			return
		}
		// RemoteAddr reads the header first.
		remote, local := pc.RemoteAddr(), pc.LocalAddr()
		hdr := pc.ProxyHeader()
		if hdr == nil {
			fmt.Fprintf(c, "error: no PROXY header\n")
			return
		}
		fmt.Fprintf(c, "v%d %s %s\n", hdr.Version, remote, local)
		echoServe(c)
	})
}

// TestProxyProtocol: with proxy_protocol = "v1" or "v2", a backend that
// parses the header (github.com/pires/go-proxyproto, header required)
// learns the real client address and the address it connected to, over
// TCP and UNIX backends, from IPv4 and IPv6 clients; the relay then
// carries the data as usual.
func TestProxyProtocol(t *testing.T) {
	beDir := testutil.ShortDir(t)
	v1tcp := proxyProtoBackend(t, "tcp", "127.0.0.1:0")
	v2tcp := proxyProtoBackend(t, "tcp", "127.0.0.1:0")
	v1unix := proxyProtoBackend(t, "unix", filepath.Join(beDir, "v1.sock"))
	v2unix := proxyProtoBackend(t, "unix", abstractName())

	type tc struct {
		name, version, listen string
		be                    *testBackend
		// dialAddr is where the client connects, from the daemon.
		dialAddr func(d *daemon) string
		// real: the header carries the client's own addresses.
		real bool
	}
	cases := []tc{
		{"v1-tcp4-to-tcp", "v1", "127.0.0.1:{{PORT0}}", v1tcp, func(d *daemon) string { return d.addr(0) }, true},
		{"v2-tcp4-to-tcp", "v2", "127.0.0.1:{{PORT1}}", v2tcp, func(d *daemon) string { return d.addr(1) }, true},
		{"v1-tcp4-to-unix", "v1", "127.0.0.1:{{PORT2}}", v1unix, func(d *daemon) string { return d.addr(2) }, true},
		{"v2-tcp4-to-abstract", "v2", "127.0.0.1:{{PORT3}}", v2unix, func(d *daemon) string { return d.addr(3) }, true},
		// A UNIX client has no IP address: the header says so (v1
		// UNKNOWN, v2 AF_UNIX or LOCAL) and the relay still works.
		{"v1-unix-client", "v1", "{{DIR}}/c1.sock", v1tcp, func(d *daemon) string { return filepath.Join(d.dir, "c1.sock") }, false},
		{"v2-unix-client", "v2", "{{DIR}}/c2.sock", v2tcp, func(d *daemon) string { return filepath.Join(d.dir, "c2.sock") }, false},
	}
	if haveIPv6() {
		cases = append(cases,
			tc{"v1-tcp6-to-tcp", "v1", "[::1]:{{PORT4}}", v1tcp, func(d *daemon) string { return fmt.Sprintf("[::1]:%d", d.ports[4]) }, true},
			tc{"v2-tcp6-to-unix", "v2", "[::1]:{{PORT5}}", v1unix, func(d *daemon) string { return fmt.Sprintf("[::1]:%d", d.ports[5]) }, true},
		)
		// v1unix is a v1 backend; the v2 case above reuses it only
		// for its address: go-proxyproto takes either version.
	}
	var body strings.Builder
	for _, c := range cases {
		fmt.Fprintf(&body, `
service %q {
  listen = [%q]
  proxy {
    backend        = %q
    proxy_protocol = %q
  }
}
`, c.name, c.listen, c.be.addr, c.version)
	}
	d := startDaemon(t, body.String(), daemonOpts{ports: 6})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := dial(t, c.dialAddr(d))
			r := bufio.NewReader(conn)
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("backend said %q, %v", line, err)
			}
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != "v"+strings.TrimPrefix(c.version, "v") {
				t.Fatalf("backend saw %q, want a %s header", strings.TrimSpace(line), c.version)
			}
			if c.real {
				if f[1] != conn.LocalAddr().String() || f[2] != conn.RemoteAddr().String() {
					t.Errorf("backend saw client %s connecting to %s; the client is %s connecting to %s",
						f[1], f[2], conn.LocalAddr(), conn.RemoteAddr())
				}
			}
			msg := "data after the header\n"
			io.WriteString(conn, msg)
			if got, err := r.ReadString('\n'); err != nil || got != msg {
				t.Errorf("relay after the header: %q, %v", got, err)
			}
		})
	}
	var files []string
	for _, c := range cases {
		if strings.HasPrefix(c.listen, "{{DIR}}") {
			files = append(files, c.dialAddr(d))
		}
	}
	for _, c := range cases {
		d.waitService(c.name, "the relay to end", func(s serviceStatus) bool { return s.Connected == 0 && s.Refused == 0 && s.Accepted == 1 })
	}
	d.stop(files...)
}
