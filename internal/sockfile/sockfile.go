// Package sockfile makes room for a UNIX socket file: the one rule every
// socket acceptd binds at a path follows (service listeners, the control
// socket, handoff receivers). It never takes over another daemon's
// socket and never removes a file that is not a socket.
package sockfile

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// ErrLive is returned when a process still listens (or, for datagram
// sockets, receives) at the path.
var ErrLive = errors.New("in use: another process listens there")

// ClearStale makes room at path for a new socket of network ("unix" for
// stream, "unixgram" for datagram). Nothing there is fine; a socket nobody
// serves (connect refused) is removed; a live socket, a socket of the
// other type, a file that is not a socket, or a probe that fails for any
// other reason (e.g. permission) is an error and the file is left alone.
func ClearStale(path, network string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; not replacing it", path)
	}
	c, err := net.DialTimeout(network, path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: %w", path, ErrLive)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("probe %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}
