package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/config"
	"github.com/acceptd/acceptd/internal/sockfile"
	"github.com/acceptd/acceptd/server/handoff"
)

// listener is one listening socket owned by the server. It outlives a
// reload when its key is unchanged, so that clients in its backlog are not
// lost.
type listener struct {
	key  string
	addr config.Address
	// ln is the socket of a stream listener, pc of a datagram one;
	// exactly one is set.
	ln net.Listener
	pc net.PacketConn
	// watch is a duplicate of a wait-mode socket, to wait for
	// readability on; see watcher.
	watchMu sync.Mutex
	watch   *os.File
	// raw is what raw accepts use, made on the first (see rawAccess).
	raw atomic.Pointer[rawAccess]
	// bound is the address as the kernel reports it (the real port when 0
	// was asked).
	bound string
	// unixFile is set when acceptd created a UNIX socket file and must
	// remove it at the end; dev/ino guard against removing a file that
	// someone else put there since.
	unixFile string
	dev, ino uint64
	// inherited sockets are never unlinked: systemd owns them.
	inherited bool
	// svc is the service this socket feeds; a reload may change it.
	svc atomic.Pointer[service]
	// done is closed when the accept loops have returned.
	done chan struct{}
	// extra counts the running extra accept loops of a fast-path exec
	// listener, extraLoops waits for them (see spread).
	extra      atomic.Int32
	extraLoops sync.WaitGroup
}

// defaultBacklog is systemd's Backlog= default (SOMAXCONN on current
// kernels), far more than net.Listen's somaxconn-capped default may be.
const defaultBacklog = 4096

// listenSocket binds a for a service with the socket options opt.
func listenSocket(ctx context.Context, a config.Address, opt config.Socket) (*listener, error) {
	switch a.Kind {
	case config.KindTCP:
		return listenTCP(ctx, a, opt)
	case config.KindUnix:
		return listenUnix(ctx, a, opt)
	case config.KindHandoff:
		return listenHandoff(a, opt)
	case config.KindUDP:
		return listenUDP(ctx, a, opt)
	}
	return nil, fmt.Errorf("listen %s: %s addresses are not supported here", a.Raw, a.Kind)
}

func listenTCP(ctx context.Context, a config.Address, opt config.Socket) (*listener, error) {
	lc := net.ListenConfig{
		// Keepalive is off unless asked, as inetd and systemd leave it
		// (KeepAlive= defaults to false); Go would turn it on.
		KeepAlive: -1,
		Control: func(network, address string, c syscall.RawConn) error {
			return setListenOptions(c, network, opt)
		},
	}
	ln, err := lc.Listen(ctx, a.Network, a.ListenAddr())
	if err != nil {
		return nil, err
	}
	if err := setBacklog(ln.(syscall.Conn), opt.Backlog); err != nil {
		ln.Close()
		return nil, err
	}
	return &listener{key: a.Key(), addr: a, ln: ln, bound: ln.Addr().String()}, nil
}

func listenUDP(ctx context.Context, a config.Address, opt config.Socket) (*listener, error) {
	lc := net.ListenConfig{
		Control: func(network, address string, c syscall.RawConn) error {
			return setListenOptions(c, network, opt)
		},
	}
	pc, err := lc.ListenPacket(ctx, a.Network, a.ListenAddr())
	if err != nil {
		return nil, err
	}
	return &listener{key: a.Key(), addr: a, pc: pc, bound: "udp://" + pc.LocalAddr().String()}, nil
}

// closeSocket closes the socket without touching its file.
//
// The socket first, then its watcher duplicate: a watcher made after the
// socket is closed cannot be (watcher's Control fails), and one made
// before holds watchMu until l.watch is set, where this finds and closes
// it. The other order let a watcher made in between keep the socket
// listening, and its wait (and shutdown) hang.
func (l *listener) closeSocket() {
	if l.ln != nil {
		l.ln.Close()
	}
	if l.pc != nil {
		l.pc.Close()
	}
	l.watchMu.Lock()
	if l.watch != nil {
		l.watch.Close()
	}
	l.watchMu.Unlock()
}

// rawConn returns the listening socket's descriptor access.
func (l *listener) rawConn() (syscall.RawConn, error) {
	var sc syscall.Conn
	var ok bool
	if l.ln != nil {
		sc, ok = l.ln.(syscall.Conn)
	} else {
		sc, ok = l.pc.(syscall.Conn)
	}
	if !ok {
		return nil, fmt.Errorf("%s: socket has no descriptor", l.bound)
	}
	return sc.SyscallConn()
}

func setListenOptions(c syscall.RawConn, network string, opt config.Socket) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		set := func(level, name int, on bool, what string) {
			if serr != nil || !on {
				return
			}
			if err := unix.SetsockoptInt(int(fd), level, name, 1); err != nil {
				serr = fmt.Errorf("set %s: %w", what, err)
			}
		}
		v6 := network == "tcp6" || network == "udp6"
		if !v6 {
			if sa, err := unix.Getsockname(int(fd)); err == nil {
				_, v6 = sa.(*unix.SockaddrInet6)
			}
		}
		set(unix.SOL_SOCKET, unix.SO_REUSEPORT, opt.ReusePort, "reuse_port")
		if v6 {
			set(unix.SOL_IPV6, unix.IPV6_FREEBIND, opt.FreeBind, "free_bind")
			set(unix.SOL_IPV6, unix.IPV6_TRANSPARENT, opt.Transparent, "transparent")
			set(unix.SOL_IPV6, unix.IPV6_V6ONLY, opt.IPv6Only, "ipv6_only")
		} else {
			set(unix.SOL_IP, unix.IP_FREEBIND, opt.FreeBind, "free_bind")
			set(unix.SOL_IP, unix.IP_TRANSPARENT, opt.Transparent, "transparent")
		}
		if d := opt.DeferAccept; d > 0 && serr == nil && strings.HasPrefix(network, "tcp") {
			// Whole seconds, rounded up, as systemd's DeferAcceptSec=.
			secs := int((d + time.Second - 1) / time.Second)
			if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, secs); err != nil {
				serr = fmt.Errorf("set defer_accept: %w", err)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// setBacklog calls listen(2) again: Linux then takes the new backlog, which
// net.Listen gives no way to choose.
func setBacklog(sc syscall.Conn, backlog int) error {
	if backlog <= 0 {
		backlog = defaultBacklog
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = unix.Listen(int(fd), backlog) }); err != nil {
		return err
	}
	if lerr != nil {
		return fmt.Errorf("set backlog %d: %w", backlog, lerr)
	}
	return nil
}

func listenUnix(ctx context.Context, a config.Address, opt config.Socket) (*listener, error) {
	path := a.Path
	if !a.Abstract() {
		// Like systemd for ListenStream= paths, make the parent
		// directory when it is missing.
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("create directory for %s: %w", path, err)
		}
		if err := sockfile.ClearStale(path, "unix"); err != nil {
			return nil, err
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	ul := ln.(*net.UnixListener)
	// acceptd removes the file itself, after checking it is still the one
	// it made; the net package would remove whatever is at the path.
	ul.SetUnlinkOnClose(false)
	l := &listener{key: a.Key(), addr: a, ln: ln, bound: path}
	if err := setBacklog(ul, opt.Backlog); err != nil {
		ln.Close()
		return nil, err
	}
	if a.Abstract() {
		return l, nil
	}
	l.unixFile = path
	fail := func(err error) (*listener, error) {
		l.close()
		return nil, err
	}
	if opt.Mode != 0 {
		if err := os.Chmod(path, opt.Mode); err != nil {
			return fail(fmt.Errorf("set mode %04o: %w", opt.Mode, err))
		}
	}
	if opt.Owner >= 0 || opt.Group >= 0 {
		if err := os.Lchown(path, opt.Owner, opt.Group); err != nil {
			return fail(fmt.Errorf("set owner/group: %w", err))
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fail(fmt.Errorf("stat %s: %w", path, err))
	}
	l.dev, l.ino = st.Dev, st.Ino
	return l, nil
}

// close closes the socket and removes the socket file acceptd created,
// if it is still the same file.
func (l *listener) close() {
	l.closeSocket()
	if l.unixFile == "" || l.inherited {
		return
	}
	var st unix.Stat_t
	if err := unix.Lstat(l.unixFile, &st); err == nil && st.Dev == l.dev && st.Ino == l.ino {
		os.Remove(l.unixFile)
	}
}

// listenHandoff binds a receiver of handed-over connections. Its socket
// file is the handoff package's to remove; the mode defaults to 0600 since
// whoever may send to it may inject connections.
func listenHandoff(a config.Address, opt config.Socket) (*listener, error) {
	hl, err := handoff.Listen(a.Path)
	if err != nil {
		return nil, err
	}
	if !a.Abstract() {
		if opt.Mode != 0 {
			if err := os.Chmod(a.Path, opt.Mode); err != nil {
				hl.Close()
				return nil, fmt.Errorf("set mode %04o: %w", opt.Mode, err)
			}
		}
		if opt.Owner >= 0 || opt.Group >= 0 {
			if err := os.Lchown(a.Path, opt.Owner, opt.Group); err != nil {
				hl.Close()
				return nil, fmt.Errorf("set owner/group: %w", err)
			}
		}
	}
	return &listener{key: a.Key(), addr: a, ln: hl, bound: "handoff:" + a.Path}, nil
}
