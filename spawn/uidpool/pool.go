package uidpool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// DefaultDir is where the lock files of held UIDs live, shared by every
// acceptd on the host (systemd keeps its own in /run/systemd/dynamic-uid).
const DefaultDir = "/run/acceptd/dynamic-uid"

// ErrExhausted is returned by Acquire when every UID of the range is held
// or in the user database.
var ErrExhausted = errors.New("dynamic user range exhausted")

// Options are the files a Pool consults; zero values are the host's.
type Options struct {
	Dir        string // lock files; "" is DefaultDir
	Passwd     string // "" is /etc/passwd
	Group      string // "" is /etc/group
	SystemdDir string // systemd's lock files; "" is /run/systemd/dynamic-uid
}

// Pool hands out UIDs from a range. Its methods are safe for concurrent
// use.
type Pool struct {
	dir        string
	systemdDir string

	mu          sync.Mutex
	first, last uint32
	next        uint32         // where the next search starts: recently freed UIDs are reused last
	held        map[uint32]int // UID -> locked descriptor
	dirReady    bool
	users       idFile
	groups      idFile
	buf         []byte
}

// New returns a Pool for the range first..last (inclusive). It touches no
// file until the first Acquire.
func New(first, last uint32, opt Options) (*Pool, error) {
	if first == 0 || first > last {
		return nil, fmt.Errorf("dynamic user range %d-%d: want 1 <= first <= last", first, last)
	}
	p := &Pool{
		dir:        opt.Dir,
		systemdDir: opt.SystemdDir,
		first:      first,
		last:       last,
		next:       first,
		held:       map[uint32]int{},
		users:      idFile{path: opt.Passwd},
		groups:     idFile{path: opt.Group},
	}
	if p.dir == "" {
		p.dir = DefaultDir
	}
	if p.systemdDir == "" {
		p.systemdDir = "/run/systemd/dynamic-uid"
	}
	if p.users.path == "" {
		p.users.path = "/etc/passwd"
	}
	if p.groups.path == "" {
		p.groups.path = "/etc/group"
	}
	return p, nil
}

// Dir returns the directory of the lock files.
func (p *Pool) Dir() string { return p.dir }

// SetRange changes the range for later Acquires (a reload). UIDs held
// outside the new range stay held until they are released.
func (p *Pool) SetRange(first, last uint32) error {
	if first == 0 || first > last {
		return fmt.Errorf("dynamic user range %d-%d: want 1 <= first <= last", first, last)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.first, p.last = first, last
	if p.next < first || p.next > last {
		p.next = first
	}
	return nil
}

// Acquire takes a free UID for the instance named label and holds it until
// Release. The GID to use is the same number. It returns ErrExhausted when
// there is none.
func (p *Pool) Acquire(label string) (uint32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.dirReady {
		if err := os.MkdirAll(p.dir, 0o755); err != nil {
			return 0, fmt.Errorf("dynamic users: %w", err)
		}
		p.dirReady = true
	}
	// The user database may have changed since the last call: a stat of
	// each file, a parse only when it did.
	if err := p.users.refresh(); err != nil {
		return 0, fmt.Errorf("dynamic users: %w", err)
	}
	if err := p.groups.refresh(); err != nil {
		return 0, fmt.Errorf("dynamic users: %w", err)
	}
	n := uint64(p.last) - uint64(p.first) + 1
	for range n {
		uid := p.next
		if p.next == p.last {
			p.next = p.first
		} else {
			p.next++
		}
		if _, mine := p.held[uid]; mine || p.users.has(uid) || p.groups.has(uid) {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join(p.systemdDir, strconv.FormatUint(uint64(uid), 10)), &st) == nil {
			continue // systemd's dynamic user
		}
		fd, err := p.lock(uid, label)
		if err != nil {
			return 0, err
		}
		if fd >= 0 {
			p.held[uid] = fd
			return uid, nil
		}
	}
	return 0, ErrExhausted
}

// lock tries to take the lock file of uid. It returns -1 and no error when
// another holder has it.
func (p *Pool) lock(uid uint32, label string) (int, error) {
	path := filepath.Join(p.dir, strconv.FormatUint(uint64(uid), 10))
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return -1, fmt.Errorf("dynamic users: open %s: %w", path, err)
	}
	if err := flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if err == unix.EWOULDBLOCK {
			return -1, nil
		}
		return -1, fmt.Errorf("dynamic users: lock %s: %w", path, err)
	}
	// The holder before us may have unlinked the file between our open
	// and our lock: then our lock is on a file nobody else will look at.
	var fst, pst unix.Stat_t
	if unix.Fstat(fd, &fst) != nil || unix.Stat(path, &pst) != nil || fst.Ino != pst.Ino || fst.Dev != pst.Dev {
		unix.Close(fd)
		return -1, nil
	}
	p.buf = strconv.AppendInt(p.buf[:0], int64(os.Getpid()), 10)
	p.buf = append(p.buf, ' ')
	p.buf = append(p.buf, label...)
	p.buf = append(p.buf, '\n')
	// The content is for people: a failed write does not make the lock
	// any less held. Write, then cut what a crashed holder left beyond
	// it: a truncation to 0 would make ext4 (auto_da_alloc) flush the
	// file on close, when /run is not a tmpfs.
	_, _ = unix.Pwrite(fd, p.buf, 0)
	_ = unix.Ftruncate(fd, int64(len(p.buf)))
	return fd, nil
}

func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if err != unix.EINTR {
			return err
		}
	}
}

// Release gives uid back. The caller must know that no process of the
// instance that had it is left. Releasing a UID that is not held does
// nothing.
func (p *Pool) Release(uid uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fd, ok := p.held[uid]
	if !ok {
		return
	}
	delete(p.held, uid)
	// Unlink while locked: see the package comment.
	_ = unix.Unlink(filepath.Join(p.dir, strconv.FormatUint(uint64(uid), 10)))
	unix.Close(fd)
}

// Held returns the number of UIDs this Pool holds.
func (p *Pool) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held)
}

// Holds reports whether this Pool holds uid.
func (p *Pool) Holds(uid uint32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.held[uid]
	return ok
}
