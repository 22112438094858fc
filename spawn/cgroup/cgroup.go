package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Manager owns acceptd's part of the cgroup2 hierarchy. Its methods are
// safe for concurrent use.
type Manager struct {
	mount string // the cgroup2 mount point
	top   string // mount/acceptd
	base  string // mount/acceptd/PID

	mu sync.Mutex
	// available are the controllers the mount root offers; enabled are
	// those switched on down to base.
	available map[string]bool
	enabled   map[string]bool
}

// Detect finds a writable cgroup2 hierarchy with cgroup.kill and makes
// acceptd's directory in it. The error says why there is none.
func Detect() (*Manager, error) {
	mount, err := findMount("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return New(mount, "acceptd", os.Getpid())
}

// New makes MOUNT/TOP/PID and returns its Manager; tests give a TOP of
// their own. Directories left in MOUNT/TOP by acceptd processes that are
// gone are removed when they are empty.
func New(mount, top string, pid int) (*Manager, error) {
	m := &Manager{
		mount:     mount,
		top:       filepath.Join(mount, top),
		base:      filepath.Join(mount, top, strconv.Itoa(pid)),
		available: map[string]bool{},
		enabled:   map[string]bool{},
	}
	if err := os.Mkdir(m.top, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroup %s: %w", m.top, err)
	}
	m.removeStale()
	if err := os.Mkdir(m.base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroup %s: %w", m.base, err)
	}
	if _, err := os.Stat(filepath.Join(m.base, "cgroup.kill")); err != nil {
		os.Remove(m.base)
		return nil, fmt.Errorf("cgroup %s: no cgroup.kill (Linux < 5.14): %w", m.base, err)
	}
	if b, err := os.ReadFile(filepath.Join(mount, "cgroup.controllers")); err == nil {
		for c := range strings.FieldsSeq(string(b)) {
			m.available[c] = true
		}
	}
	return m, nil
}

// Base returns the directory the instances' cgroups are made in.
func (m *Manager) Base() string { return m.base }

// removeStale removes the empty directories of acceptd processes that no
// longer exist. A populated one stays: its processes are still running.
func (m *Manager) removeStale() {
	ents, _ := os.ReadDir(m.top)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		dir := filepath.Join(m.top, e.Name())
		kids, _ := os.ReadDir(dir)
		for _, k := range kids {
			if k.IsDir() {
				_ = unix.Rmdir(filepath.Join(dir, k.Name()))
			}
		}
		_ = unix.Rmdir(dir)
	}
}

// Available reports whether controller ("pids", "memory") exists in the
// hierarchy.
func (m *Manager) Available(controller string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.available[controller]
}

// enable switches controller on from the mount root down to base, once.
func (m *Manager) enable(controller string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.enabled[controller] {
		return nil
	}
	if !m.available[controller] {
		return fmt.Errorf("cgroup controller %s is not available in %s", controller, m.mount)
	}
	for _, dir := range []string{m.mount, m.top, m.base} {
		if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+"+controller); err != nil {
			return fmt.Errorf("enable cgroup controller %s: %w", controller, err)
		}
	}
	m.enabled[controller] = true
	return nil
}

// Close removes acceptd's directory; every Group must be removed first.
func (m *Manager) Close() error {
	if err := unix.Rmdir(m.base); err != nil && err != unix.ENOENT {
		return fmt.Errorf("cgroup %s: %w", m.base, err)
	}
	// The shared top directory stays when another acceptd uses it.
	_ = unix.Rmdir(m.top)
	return nil
}

// Limits are per-instance controller settings; zero means none.
type Limits struct {
	TasksMax  int    // pids.max
	MemoryMax uint64 // memory.max (bytes)
}

// Group is one instance's cgroup.
type Group struct {
	path string
	fd   int
	// events is cgroup.events, kept open so that Populated is one pread:
	// it is asked after every instance.
	events int
	// killed is set once cgroup.kill has been written; see Reusable.
	killed atomic.Bool
}

// Create makes the cgroup name under base with lim applied and opens it
// for CLONE_INTO_CGROUP. A limit whose controller is missing is an error
// that leaves nothing behind.
func (m *Manager) Create(name string, lim Limits) (*Group, error) {
	if lim.TasksMax > 0 {
		if err := m.enable("pids"); err != nil {
			return nil, err
		}
	}
	if lim.MemoryMax > 0 {
		if err := m.enable("memory"); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(m.base, name)
	if err := unix.Mkdir(path, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", path, err)
	}
	g := &Group{path: path, fd: -1, events: -1}
	fail := func(err error) (*Group, error) {
		_ = unix.Rmdir(path)
		return nil, fmt.Errorf("cgroup %s: %w", path, err)
	}
	if lim.TasksMax > 0 {
		if err := writeFile(filepath.Join(path, "pids.max"), strconv.Itoa(lim.TasksMax)); err != nil {
			return fail(err)
		}
	}
	if lim.MemoryMax > 0 {
		if err := writeFile(filepath.Join(path, "memory.max"), strconv.FormatUint(lim.MemoryMax, 10)); err != nil {
			return fail(err)
		}
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	g.fd = fd
	ev, err := unix.Openat(fd, "cgroup.events", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(fd)
		return fail(err)
	}
	g.events = ev
	return g, nil
}

// Path returns the cgroup's directory.
func (g *Group) Path() string { return g.path }

// FD returns the directory's descriptor for spawn.Spec.CgroupFD, until
// CloseFD.
func (g *Group) FD() int { return g.fd }

// CloseFD closes the descriptor once the child is started.
func (g *Group) CloseFD() {
	if g.fd >= 0 {
		unix.Close(g.fd)
		g.fd = -1
	}
}

// Populated reports whether a process is left in the cgroup.
func (g *Group) Populated() (bool, error) {
	var buf [256]byte
	var b []byte
	if g.events >= 0 {
		n, err := unix.Pread(g.events, buf[:], 0)
		if err != nil {
			return false, fmt.Errorf("cgroup %s: read cgroup.events: %w", g.path, err)
		}
		b = buf[:n]
	} else {
		var err error
		if b, err = os.ReadFile(filepath.Join(g.path, "cgroup.events")); err != nil {
			return false, fmt.Errorf("cgroup %s: %w", g.path, err)
		}
	}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if v, ok := bytes.CutPrefix(line, []byte("populated ")); ok {
			return string(v) != "0", nil
		}
	}
	return false, fmt.Errorf("cgroup %s: no populated line in cgroup.events", g.path)
}

// Kill kills every process in the cgroup (cgroup.kill): SIGKILL, which a
// process can neither catch nor escape by forking.
func (g *Group) Kill() error {
	g.killed.Store(true)
	if err := writeFile(filepath.Join(g.path, "cgroup.kill"), "1"); err != nil {
		return fmt.Errorf("cgroup %s: kill: %w", g.path, err)
	}
	return nil
}

// Reusable reports whether the cgroup may take another instance once it is
// empty. One that was ever killed may not: since the fix for the race
// between fork and cgroup.kill (Linux 6.14, kill_seq), a child cloned with
// CLONE_INTO_CGROUP compares the kill count of its parent's cgroup with
// that of the target, and is killed at birth when they differ, so every
// instance started in a once-killed cgroup would die with SIGKILL (seen on
// 6.18; server.TestSandboxCgroupAfterKill is the instance after one).
func (g *Group) Reusable() bool { return !g.killed.Load() }

// Signal sends sig to every process in the cgroup, for a SIGTERM before
// Kill. A process forked while this runs may miss it; Kill does not.
func (g *Group) Signal(sig syscall.Signal) error {
	pids, err := g.Pids()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		_ = unix.Kill(pid, sig)
	}
	return nil
}

// Pids returns the processes in the cgroup.
func (g *Group) Pids() ([]int, error) {
	f, err := os.Open(filepath.Join(g.path, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", g.path, err)
	}
	defer f.Close()
	var pids []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if pid, err := strconv.Atoi(sc.Text()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, sc.Err()
}

// Stats are the figures of one cgroup; -1 where the hierarchy has none.
type Stats struct {
	Procs         int
	MemoryCurrent int64 // bytes
	CPUUsageUsec  int64
}

// Stats reads the cgroup's figures.
func (g *Group) Stats() Stats {
	s := Stats{Procs: -1, MemoryCurrent: -1, CPUUsageUsec: -1}
	if pids, err := g.Pids(); err == nil {
		s.Procs = len(pids)
	}
	if b, err := os.ReadFile(filepath.Join(g.path, "memory.current")); err == nil {
		s.MemoryCurrent, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	if b, err := os.ReadFile(filepath.Join(g.path, "cpu.stat")); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				s.CPUUsageUsec, _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return s
}

// Remove removes the cgroup; it fails with EBUSY while it is populated.
func (g *Group) Remove() error {
	g.CloseFD()
	if g.events >= 0 {
		unix.Close(g.events)
		g.events = -1
	}
	if err := unix.Rmdir(g.path); err != nil && err != unix.ENOENT {
		return fmt.Errorf("cgroup %s: remove: %w", g.path, err)
	}
	return nil
}

func writeFile(path, s string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = unix.Write(fd, []byte(s))
	return err
}

// findMount returns the first cgroup2 mount point in mountinfo.
func findMount(mountinfo string) (string, error) {
	b, err := os.ReadFile(mountinfo)
	if err != nil {
		return "", fmt.Errorf("find cgroup2 mount: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 1 || qf[0] != "cgroup2" {
			continue
		}
		if pf[3] != "/" {
			continue // a bind mount of a sub-tree: its files are not the hierarchy's root
		}
		if slices.Contains(strings.Split(pf[5], ","), "ro") {
			continue
		}
		return unescapeMount(pf[4]), nil
	}
	return "", errors.New("no writable cgroup2 mount")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
