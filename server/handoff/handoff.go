package handoff

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/internal/sockfile"
)

// tag is the payload of every hand-over datagram: a version, so that the
// format may change without a receiver misreading it.
const tag = '1'

// Sender sends connections to receivers. One Sender serves any number of
// goroutines and destinations; its zero value is not usable: call
// NewSender.
type Sender struct {
	c *net.UnixConn
}

// NewSender opens the unbound datagram socket that hand-overs leave from.
func NewSender() (*Sender, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("handoff sender: socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "handoff-sender")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("handoff sender: %w", err)
	}
	return &Sender{c: c.(*net.UnixConn)}, nil
}

// Close closes the sender's socket.
func (s *Sender) Close() error { return s.c.Close() }

// Send passes fd to the receiver listening at path ("@name" for the
// abstract namespace). The caller keeps fd and closes it afterwards: the
// receiver has its own copy once Send returns nil.
func (s *Sender) Send(path string, fd int) error {
	rc, err := s.c.SyscallConn()
	if err != nil {
		return err
	}
	// MSG_DONTWAIT: a receiver that does not keep up makes this hand-over
	// fail at once (EAGAIN) rather than stall the sender; poll cannot
	// tell when an unconnected datagram send would succeed.
	var serr error
	err = rc.Control(func(sfd uintptr) {
		serr = unix.Sendmsg(int(sfd), []byte{tag}, unix.UnixRights(fd), &unix.SockaddrUnix{Name: path}, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("hand over to %s: %w", path, err)
	}
	return nil
}

// SendConn passes c's socket to the receiver at path; c stays open, the
// caller closes it.
func (s *Sender) SendConn(path string, c syscall.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = s.Send(path, int(fd)) }); err != nil {
		return err
	}
	return serr
}

// Listener receives handed-over connections on a UNIX datagram socket and
// returns them from Accept like a net.Listener.
type Listener struct {
	c    *net.UnixConn
	path string
	// unlink is set when Listen made the socket file.
	unlink bool
}

var _ net.Listener = (*Listener)(nil)

// Listen binds a receiver at path (a file system path, made with mode
// 0600 unless changed afterwards, or "@name"). A stale socket file at path
// is replaced; any other file is an error.
func Listen(path string) (*Listener, error) {
	if len(path) > 0 && path[0] != '@' {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("handoff listen %s: %w", path, err)
		}
		if err := sockfile.ClearStale(path, "unixgram"); err != nil {
			return nil, fmt.Errorf("handoff listen %s: %w", path, err)
		}
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("handoff listen %s: %w", path, err)
	}
	l := &Listener{c: c, path: path, unlink: path[0] != '@'}
	if l.unlink {
		if err := os.Chmod(path, 0o600); err != nil {
			l.Close()
			return nil, fmt.Errorf("handoff listen %s: %w", path, err)
		}
	}
	return l, nil
}

// Accept waits for the next handed-over connection. Datagrams that carry
// no descriptor or a descriptor that is not a stream socket are dropped
// (their descriptors closed) and Accept goes on waiting. It returns
// net.ErrClosed after Close.
func (l *Listener) Accept() (net.Conn, error) {
	var buf [16]byte
	oob := make([]byte, unix.CmsgSpace(4*8))
	for {
		n, oobn, _, _, err := l.c.ReadMsgUnix(buf[:], oob)
		if err != nil {
			return nil, err
		}
		fds := parseRights(oob[:oobn])
		if n != 1 || buf[0] != tag || len(fds) != 1 {
			closeAll(fds)
			continue
		}
		c, err := fdConn(fds[0])
		if err != nil {
			continue
		}
		return c, nil
	}
}

func parseRights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if r, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, r...)
		}
	}
	return fds
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// fdConn turns a received descriptor into a net.Conn and closes the
// descriptor (net.FileConn keeps its own copy).
//
// The descriptor is close-on-exec already: on Linux ReadMsgUnix receives
// with MSG_CMSG_CLOEXEC.
func fdConn(fd int) (net.Conn, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil || typ != unix.SOCK_STREAM {
		unix.Close(fd)
		return nil, fmt.Errorf("handed-over fd is not a stream socket")
	}
	f := os.NewFile(uintptr(fd), "handoff")
	defer f.Close()
	return net.FileConn(f)
}

// Close stops receiving and removes the socket file Listen made.
func (l *Listener) Close() error {
	err := l.c.Close()
	if l.unlink {
		os.Remove(l.path)
	}
	return err
}

// Addr returns the receiving socket's address.
func (l *Listener) Addr() net.Addr { return l.c.LocalAddr() }

// Path returns the path the Listener receives on.
func (l *Listener) Path() string { return l.path }
