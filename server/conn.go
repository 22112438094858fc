package server

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/spawn"
)

// Conn is one accepted connection on its way through a service, with what
// is known of its peer. The Handler that receives it owns it.
type Conn struct {
	net.Conn
	// Seq is N in the instance name: the service's count of accepted
	// connections, from 0.
	Seq uint64
	// Instance is the systemd-style instance name,
	// SERVICE@N-LOCAL-REMOTE or SERVICE@N-PID-UID for UNIX peers.
	Instance string
	// Peer describes both ends for the child's environment.
	Peer spawn.Conn
	// Remote and Local are the peer and local addresses as logged.
	Remote, Local string
	Accepted      time.Time
}

// peerInfo fills what is known about c's two ends.
func peerInfo(c net.Conn, p *spawn.Conn) (remote, local string) {
	p.PeerPID, p.PeerUID, p.PeerGID = -1, -1, -1
	switch c := c.(type) {
	case *net.TCPConn:
		p.Proto = "TCP"
		r := c.RemoteAddr().(*net.TCPAddr).AddrPort()
		l := c.LocalAddr().(*net.TCPAddr).AddrPort()
		p.RemoteIP, p.RemotePort = r.Addr().Unmap(), int(r.Port())
		p.LocalIP, p.LocalPort = l.Addr().Unmap(), int(l.Port())
		return netip.AddrPortFrom(p.RemoteIP, r.Port()).String(), netip.AddrPortFrom(p.LocalIP, l.Port()).String()
	case *net.UnixConn:
		p.Proto = "UNIX"
		// An unbound client socket reads as "" or "@": no path.
		if ra, ok := c.RemoteAddr().(*net.UnixAddr); ok && ra != nil && ra.Name != "@" {
			p.RemotePath = ra.Name
		}
		if la, ok := c.LocalAddr().(*net.UnixAddr); ok && la != nil {
			local = la.Name
		}
		if rc, err := c.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) {
				if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
					p.PeerPID, p.PeerUID, p.PeerGID = int(cred.Pid), int(cred.Uid), int(cred.Gid)
				}
			})
		}
		remote = p.RemotePath
		if remote == "" && p.PeerPID >= 0 {
			remote = "pid " + strconv.Itoa(p.PeerPID) + " uid " + strconv.Itoa(p.PeerUID)
		}
		return remote, local
	}
	return c.RemoteAddr().String(), c.LocalAddr().String()
}

// instanceName builds SERVICE@N-LOCAL-REMOTE (or SERVICE@N-PID-UID for a
// UNIX peer) the way systemd names per-connection units, without fmt.
func instanceName(service string, n uint64, p *spawn.Conn, local, remote string) string {
	b := make([]byte, 0, len(service)+len(local)+len(remote)+24)
	b = append(b, service...)
	b = append(b, '@')
	b = strconv.AppendUint(b, n, 10)
	b = append(b, '-')
	if p.Proto == "UNIX" {
		b = strconv.AppendInt(b, int64(p.PeerPID), 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(p.PeerUID), 10)
		return string(b)
	}
	b = append(b, local...)
	b = append(b, '-')
	b = append(b, remote...)
	return string(b)
}

// instance is a live connection as the status shows it.
type instance struct {
	name    string
	remote  string
	local   string
	started time.Time
	// pid, uid and gid are set once a process serves the connection.
	pid      atomic.Int64
	uid, gid atomic.Int64
	// proc is the process serving the connection, for shutdown.
	proc atomic.Pointer[spawn.Process]
}

// registry holds a service's live instances.
type registry struct {
	mu sync.Mutex
	m  map[uint64]*instance
}

func (r *registry) add(seq uint64, in *instance) {
	r.mu.Lock()
	if r.m == nil {
		r.m = map[uint64]*instance{}
	}
	r.m[seq] = in
	r.mu.Unlock()
}

func (r *registry) remove(seq uint64) {
	r.mu.Lock()
	delete(r.m, seq)
	r.mu.Unlock()
}

func (r *registry) each(f func(seq uint64, in *instance)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range r.m {
		f(k, v)
	}
}
