package activation

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

const (
	// listenFDsStart is SD_LISTEN_FDS_START: the first passed descriptor.
	listenFDsStart = 3
	// maxListenFDs bounds LISTEN_FDS. systemd has no such limit, but ten
	// thousand listening sockets in one service is a corrupt variable, not
	// a configuration, and checking that many descriptors would take long.
	maxListenFDs = 10000
	// maxProblems is how many bad descriptors one error lists by number.
	maxProblems = 8
)

// The variables of sd_listen_fds(3).
const (
	envPID   = "LISTEN_PID"
	envFDs   = "LISTEN_FDS"
	envNames = "LISTEN_FDNAMES"
)

// Socket is one inherited socket.
type Socket struct {
	// FD is the descriptor's number in this process.
	FD int
	// Name is the socket's name from LISTEN_FDNAMES (systemd's
	// FileDescriptorName=), "" when the variable is absent or was ignored.
	// systemd's default names ("unknown", the socket unit's name) are kept
	// as they are.
	Name string
	// File holds the descriptor, with close-on-exec set. Whoever claims
	// the Socket owns File and must close it (net.FileListener dups it).
	// nil once CloseUnclaimed has closed it.
	File *os.File
	// Network is "tcp" (AF_INET or AF_INET6 stream, MPTCP included),
	// "udp", "unix", "unixgram", "unixpacket", "sctp", "vsock", or for
	// anything else "af<family>/<type>".
	Network string
	// Addr is the bound local address: "127.0.0.1:80", "[::]:80",
	// "/run/x.sock", "@abstract", "vsock:CID:PORT"; "" when unbound or
	// of a family acceptd does not know.
	Addr string
	// Key matches config.Address.Key for a listen address of the same
	// socket: "tcp [::]:80", "tcp 0.0.0.0:80", "udp 127.0.0.1:53",
	// "unix /run/x.sock", "unix @name". Datagram and seqpacket UNIX
	// sockets get "unixgram PATH" and "unixpacket PATH" so that they never
	// stand in for a stream address. "" when the socket has no address a
	// configuration could name.
	Key string
	// Listening reports SO_ACCEPTCONN: listen(2) was called on it.
	Listening bool
	// V6Only reports IPV6_V6ONLY on an AF_INET6 socket. Key does not show
	// it: "tcp [::]:80" is both a dual-stack and an IPv6-only socket.
	V6Only bool
	// FromListenFDs is true for sockets passed through LISTEN_FDS and
	// false for those adopted by [Set.ByFD].
	FromListenFDs bool
}

// Set is the inherited sockets of this process. Its methods may be called
// from several goroutines.
type Set struct {
	mu      sync.Mutex
	sockets []*Socket
	claimed map[*Socket]bool
	// atStart holds the descriptors open when FromEnv ran; nil when
	// /proc/self/fd could not be read.
	atStart  map[int]bool
	warnings []string
}

// FromEnv takes the sockets passed by systemd's socket activation
// protocol. getenv and unsetenv are os.Getenv and os.Unsetenv in
// production; pid is os.Getpid(). Call it first thing in main, before
// anything opens a descriptor, so that [Set.ByFD] can tell inherited
// descriptors from ones this process opened.
//
// It always unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, whatever
// it returns, so that no child started later sees them.
//
// Outcomes, like sd_listen_fds(3):
//   - LISTEN_PID absent, or another process's pid: the variables were
//     not meant for this process; an empty Set, no error (a warning when
//     LISTEN_FDS was set).
//   - LISTEN_FDS absent or 0: an empty Set, no error.
//   - LISTEN_PID or LISTEN_FDS not a decimal number, LISTEN_FDS above
//     10000 or above the open file limit: an error; no descriptor is
//     touched.
//   - a descriptor in 3..3+LISTEN_FDS-1 that is not open, not a socket,
//     or whose address cannot be read: an error naming each such
//     descriptor. Every open one gets close-on-exec; the sockets are
//     closed, other descriptors are left alone (they may be this
//     process's own).
//   - LISTEN_FDNAMES with a different number of names than LISTEN_FDS:
//     the names are ignored (every Name is "") and a warning says so,
//     since it cannot be known which name belongs to which socket.
//
// The error, when not nil, says what was wrong with which variable or
// descriptor; the Set is then nil.
func FromEnv(getenv func(string) string, unsetenv func(string) error, pid int) (*Set, error) {
	return fromEnv(getenv, unsetenv, pid, listenFDsStart)
}

// fromEnv is FromEnv with the first descriptor as a parameter, so tests
// can place their sockets at high numbers instead of 3.
func fromEnv(getenv func(string) string, unsetenv func(string) error, pid, start int) (*Set, error) {
	pidStr, fdsStr, namesStr := getenv(envPID), getenv(envFDs), getenv(envNames)
	var unsetErrs []error
	for _, k := range []string{envPID, envFDs, envNames} {
		if err := unsetenv(k); err != nil {
			unsetErrs = append(unsetErrs, fmt.Errorf("unset %s: %w", k, err))
		}
	}
	if err := errors.Join(unsetErrs...); err != nil {
		return nil, err
	}

	s := &Set{claimed: make(map[*Socket]bool), atStart: openFDs()}
	switch {
	case pidStr == "" && fdsStr == "":
		return s, nil
	case pidStr == "":
		s.warn(fmt.Sprintf("%s=%s without %s: not for this process, ignored", envFDs, fdsStr, envPID))
		return s, nil
	}
	listenPID, ok := parseDecimal(pidStr)
	if !ok || listenPID == 0 {
		return nil, fmt.Errorf("%s=%q is not a process id", envPID, pidStr)
	}
	if listenPID != pid {
		// Meant for another process: a parent that did not unset them.
		s.warn(fmt.Sprintf("%s=%d is not this process (%d): %s ignored", envPID, listenPID, pid, envFDs))
		return s, nil
	}
	if fdsStr == "" {
		return s, nil
	}
	n, ok := parseDecimal(fdsStr)
	if !ok {
		return nil, fmt.Errorf("%s=%q is not a count of descriptors", envFDs, fdsStr)
	}
	if n > maxListenFDs {
		return nil, fmt.Errorf("%s=%d: more than %d sockets is not believable", envFDs, n, maxListenFDs)
	}
	if limit, ok := openFileLimit(); ok && uint64(start+n) > limit {
		return nil, fmt.Errorf("%s=%d: descriptors %d-%d are beyond the open file limit %d",
			envFDs, n, start, start+n-1, limit)
	}
	if n == 0 {
		if namesStr != "" {
			s.warn(fmt.Sprintf("%s=%q with %s=0: names ignored", envNames, namesStr, envFDs))
		}
		return s, nil
	}

	names := make([]string, n)
	if namesStr != "" {
		parts := strings.Split(namesStr, ":")
		if len(parts) == n {
			names = parts
		} else {
			s.warn(fmt.Sprintf("%s has %d names for %d descriptors: names ignored", envNames, len(parts), n))
		}
	}

	var problems []error
	for i := range n {
		fd := start + i
		sock, err := inspect(fd)
		if err != nil {
			// Passed to us but refused: still no child may get it.
			if cerr := setCloexec(fd); cerr != nil {
				err = errors.Join(err, cerr)
			}
			problems = append(problems, err)
			continue
		}
		sock.Name = names[i]
		sock.FromListenFDs = true
		s.sockets = append(s.sockets, sock)
	}
	if len(problems) > 0 {
		for _, sock := range s.sockets {
			_ = closeFD(sock.FD) // ours: passed to us, and we refuse them
		}
		return nil, fmt.Errorf("%s=%d: %w", envFDs, n, joinProblems(problems))
	}
	for _, sock := range s.sockets {
		sock.File = os.NewFile(uintptr(sock.FD), fileName(sock))
	}
	return s, nil
}

// parseDecimal parses a non-negative decimal number of digits only (no
// sign, no space), as systemd writes them.
func parseDecimal(s string) (int, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

func joinProblems(problems []error) error {
	if len(problems) > maxProblems {
		more := len(problems) - maxProblems
		problems = append(problems[:maxProblems:maxProblems], fmt.Errorf("and %d more", more))
	}
	return errors.Join(problems...)
}

func fileName(sock *Socket) string {
	if sock.Name != "" {
		return "systemd:" + sock.Name
	}
	return "fd:" + strconv.Itoa(sock.FD)
}

func (s *Set) warn(w string) { s.warnings = append(s.warnings, w) }

// Warnings returns what FromEnv ignored and why, for the log.
func (s *Set) Warnings() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.warnings...)
}

// All returns every socket of the Set, claimed or not, in LISTEN_FDS
// order followed by those adopted through ByFD.
func (s *Set) All() []*Socket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Socket(nil), s.sockets...)
}

// ByName returns the first unclaimed socket whose LISTEN_FDNAMES name is
// name. systemd gives every socket of a socket unit the same name unless
// FileDescriptorName= says otherwise, so several sockets may share a
// name: ByName then returns them one at a time as they are claimed, and
// [Set.Named] returns them all. A systemd:NAME listen address should use
// Named and listen on each.
func (s *Set) ByName(name string) (*Socket, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sock := range s.sockets {
		if sock.FromListenFDs && sock.Name == name && name != "" && !s.claimed[sock] && sock.File != nil {
			return sock, true
		}
	}
	return nil, false
}

// Named returns every unclaimed socket named name, in LISTEN_FDS order.
func (s *Set) Named(name string) []*Socket {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Socket
	for _, sock := range s.sockets {
		if sock.FromListenFDs && sock.Name == name && name != "" && !s.claimed[sock] && sock.File != nil {
			out = append(out, sock)
		}
	}
	return out
}

// ByKey returns the first unclaimed socket whose Key is key (a
// config.Address.Key). A stream socket matches only when it is listening:
// a connected socket bound to the same address cannot serve a listener.
func (s *Set) ByKey(key string) (*Socket, bool) {
	if key == "" {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sock := range s.sockets {
		if sock.Key != key || s.claimed[sock] || sock.File == nil {
			continue
		}
		if isStream(sock.Network) && !sock.Listening {
			continue
		}
		return sock, true
	}
	return nil, false
}

// ByFD returns the unclaimed socket that is descriptor fd, for an fd:N
// listen address. fd need not come from LISTEN_FDS: any socket that was
// already open when FromEnv ran (inherited from the parent) is adopted
// into the Set, with close-on-exec set. It is an error when fd is claimed
// already, was not open when FromEnv ran (it would be one of this
// process's own descriptors), is not open now, or is not a socket.
func (s *Set) ByFD(fd int) (*Socket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sock := range s.sockets {
		if sock.FD != fd {
			continue
		}
		if sock.File == nil {
			// The number may belong to something else by now.
			return nil, fmt.Errorf("fd %d: closed already as unclaimed", fd)
		}
		if s.claimed[sock] {
			return nil, fmt.Errorf("fd %d: already in use by another listen address", fd)
		}
		return sock, nil
	}
	if fd < 0 {
		return nil, fmt.Errorf("fd %d: not a descriptor number", fd)
	}
	if s.atStart != nil && !s.atStart[fd] {
		return nil, fmt.Errorf("fd %d: not open when acceptd started, so not inherited", fd)
	}
	sock, err := inspect(fd)
	if err != nil {
		return nil, err
	}
	// Whatever fd was at start, it must not be taken twice: drop it from
	// atStart so a second ByFD after a Close cannot adopt a reused number.
	delete(s.atStart, fd)
	sock.File = os.NewFile(uintptr(fd), fileName(sock))
	s.sockets = append(s.sockets, sock)
	return sock, nil
}

// Claim records that the caller owns sock from now on: the Set will not
// return it again and CloseUnclaimed leaves it open. sock must come from
// this Set and be unclaimed; anything else is a bug in the caller and
// panics.
func (s *Set) Claim(sock *Socket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, own := range s.sockets {
		if own == sock {
			if s.claimed[sock] {
				panic(fmt.Sprintf("activation: fd %d claimed twice", sock.FD))
			}
			if sock.File == nil {
				panic(fmt.Sprintf("activation: fd %d claimed after it was closed", sock.FD))
			}
			s.claimed[sock] = true
			return
		}
	}
	panic(fmt.Sprintf("activation: claim of fd %d, which is not in the set", sock.FD))
}

// CloseUnclaimed closes every socket nobody claimed and returns them, for
// the log. Call it once every listener has been set up; later calls close
// only sockets adopted since.
func (s *Set) CloseUnclaimed() []*Socket {
	s.mu.Lock()
	defer s.mu.Unlock()
	var closed []*Socket
	for _, sock := range s.sockets {
		if s.claimed[sock] || sock.File == nil {
			continue
		}
		_ = sock.File.Close() // nothing to do about a failed close of an unused fd
		sock.File = nil
		closed = append(closed, sock)
	}
	return closed
}

func isStream(network string) bool {
	switch network {
	case "tcp", "unix", "unixpacket", "sctp", "vsock":
		return true
	}
	return false
}
