package spawn

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// helperArg is the hidden first argument that turns the acceptd binary
// into the helper. It is not a word a user would type.
const helperArg = "__acceptd-spawn-helper-v1__"

// helperExitCode is the helper's exit status when it could not exec the
// program; Start has already returned the reason as an error by then.
const helperExitCode = 127

// MaybeRunHelper must be called first thing in main (and in the TestMain of
// any package whose tests spawn through the helper). When the process was
// started as the helper it applies the settings of the Spec (rlimits,
// umask, private /tmp, lo up, chroot, no_new_privs, credentials, working
// directory, LISTEN_PID) and
// execs the real program in its place, keeping the pid; it does not
// return.
//
// Otherwise it marks every descriptor above 2 that the process inherited
// close-on-exec, and returns. Go opens its own descriptors close-on-exec,
// but whatever started acceptd (a shell, a supervisor) may have leaked
// some, and they would reach every child: CONTRACT says a per-connection
// program gets no other descriptor of acceptd. Descriptors meant for a
// child are passed in [Spec.Files], which spawn dups into place without
// the flag, so this takes nothing from anyone; LISTEN_FDS sockets are
// still usable, as go-systemd's activation marks them the same way.
//
// The helper runs as acceptd's user and drops to Spec.Credential itself,
// after setting the limits, so a root acceptd can raise hard limits as
// systemd's LimitNOFILE= can. A non-root acceptd can only lower them, as
// setrlimit(2) allows.
func MaybeRunHelper() {
	if len(os.Args) < 2 || os.Args[1] != helperArg {
		closeOnExecInherited()
		return
	}
	// no_new_privs is per thread until exec, and exec must come from
	// the same thread. (The credentials below are set for every thread
	// by syscall's Setuid and friends.)
	runtime.LockOSThread()
	runHelper(os.Args)
	os.Exit(helperExitCode)
}

// closeOnExecInherited sets FD_CLOEXEC on every descriptor from 3 up.
func closeOnExecInherited() {
	if unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	// Before Linux 5.11: one by one.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// helperSettings is what the parent tells the helper, encoded in one
// argument by encode.
type helperSettings struct {
	umask      int // -1: keep
	noNewPrivs bool
	listenPID  bool
	limits     []Rlimit
	cred       *syscall.Credential
	closeStd   int // bit i: close fd i (< 3) before exec
	errFD      int // where to report a failure; close-on-exec is set by the helper
	privateTmp bool
	loUp       bool   // bring lo up: the child is in a new network namespace
	chroot     string // "" keeps the root
}

// encode appends s as ';'-separated tokens: u=UMASK N L r=RES:CUR:MAX
// c=UID:GID:G1.G2 z=MASK e=FD T n R=HEXPATH (hex: a path may hold ';').
func (s *helperSettings) encode(b []byte) []byte {
	b = append(b, "e="...)
	b = strconv.AppendInt(b, int64(s.errFD), 10)
	b = append(b, ";z="...)
	b = strconv.AppendInt(b, int64(s.closeStd), 10)
	if s.umask >= 0 {
		b = append(b, ";u="...)
		b = strconv.AppendInt(b, int64(s.umask), 10)
	}
	if s.noNewPrivs {
		b = append(b, ";N"...)
	}
	if s.listenPID {
		b = append(b, ";L"...)
	}
	if s.privateTmp {
		b = append(b, ";T"...)
	}
	if s.loUp {
		b = append(b, ";n"...)
	}
	if s.chroot != "" {
		b = append(b, ";R="...)
		b = hex.AppendEncode(b, []byte(s.chroot))
	}
	for _, l := range s.limits {
		b = append(b, ";r="...)
		b = strconv.AppendInt(b, int64(l.Resource), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, l.Cur, 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, l.Max, 10)
	}
	if c := s.cred; c != nil {
		b = append(b, ";c="...)
		b = strconv.AppendUint(b, uint64(c.Uid), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(c.Gid), 10)
		b = append(b, ':')
		for i, g := range c.Groups {
			if i > 0 {
				b = append(b, '.')
			}
			b = strconv.AppendUint(b, uint64(g), 10)
		}
	}
	return b
}

func decodeSettings(arg string) (*helperSettings, error) {
	s := &helperSettings{umask: -1, errFD: -1}
	for tok := range strings.SplitSeq(arg, ";") {
		key, val, _ := strings.Cut(tok, "=")
		var err error
		switch key {
		case "e":
			s.errFD, err = strconv.Atoi(val)
		case "z":
			s.closeStd, err = strconv.Atoi(val)
		case "u":
			s.umask, err = strconv.Atoi(val)
		case "N":
			s.noNewPrivs = true
		case "L":
			s.listenPID = true
		case "T":
			s.privateTmp = true
		case "n":
			s.loUp = true
		case "R":
			var p []byte
			p, err = hex.DecodeString(val)
			s.chroot = string(p)
		case "r":
			var l Rlimit
			f := strings.Split(val, ":")
			if len(f) != 3 {
				return nil, fmt.Errorf("bad limit %q", val)
			}
			if l.Resource, err = strconv.Atoi(f[0]); err == nil {
				if l.Cur, err = strconv.ParseUint(f[1], 10, 64); err == nil {
					l.Max, err = strconv.ParseUint(f[2], 10, 64)
				}
			}
			s.limits = append(s.limits, l)
		case "c":
			s.cred, err = decodeCred(val)
		default:
			err = errors.New("unknown setting")
		}
		if err != nil {
			return nil, fmt.Errorf("helper setting %q: %w", tok, err)
		}
	}
	return s, nil
}

func decodeCred(val string) (*syscall.Credential, error) {
	f := strings.Split(val, ":")
	if len(f) != 3 {
		return nil, errors.New("want UID:GID:GROUPS")
	}
	uid, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(f[1], 10, 32)
	if err != nil {
		return nil, err
	}
	c := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	if f[2] != "" {
		for g := range strings.SplitSeq(f[2], ".") {
			n, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				return nil, err
			}
			c.Groups = append(c.Groups, uint32(n))
		}
	}
	return c, nil
}

// startHelper starts /proc/self/exe as the helper for spec and waits until
// the helper has exec'd the real program or reported why it could not.
func startHelper(spec *Spec) (*Process, error) {
	// The helper's error pipe. Both ends are non-blocking: the read end
	// parks in the netpoller, and the helper writes one short message to
	// an empty pipe, which cannot block.
	var pfd [2]int
	if err := syscall.Pipe2(pfd[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return nil, fmt.Errorf("spawn %s: helper pipe: %w", spec.Path, err)
	}
	r := os.NewFile(uintptr(pfd[0]), "spawn-helper")
	defer r.Close()

	// The child's descriptors: spec.Files, at least 0-2, then the pipe.
	n := max(len(spec.Files), 3)
	files := make([]uintptr, n+1)
	s := helperSettings{
		umask:      spec.Umask,
		noNewPrivs: spec.NoNewPrivs,
		listenPID:  spec.ListenPID,
		limits:     spec.Limits,
		cred:       spec.Credential,
		errFD:      n,
		privateTmp: spec.PrivateTmp,
		loUp:       spec.PrivateNetwork,
		chroot:     spec.Chroot,
	}
	for i := range n {
		fd := -1
		if i < len(spec.Files) {
			fd = spec.Files[i]
		}
		files[i] = uintptr(fd)
		if fd < 0 && i < 3 {
			// The helper's Go runtime opens /dev/null on a closed 0-2;
			// the helper closes it again.
			s.closeStd |= 1 << i
		}
	}
	files[n] = uintptr(pfd[1])

	args := spec.Args
	if len(args) == 0 {
		args = []string{spec.Path}
	}
	argv := make([]string, 0, 5+len(args))
	argv = append(argv, args[0], helperArg, string(s.encode(nil)), spec.Dir, spec.Path)
	argv = append(argv, args...)

	// Credential and Dir are the helper's job: it sets limits as
	// acceptd's user first, and changes directory as the new user.
	attr := syscall.ProcAttr{
		Env:   spec.Env,
		Files: files,
		Sys:   sysAttr(spec, nil),
	}
	p, err := forkExec(spec, "/proc/self/exe", argv, &attr)
	syscall.Close(pfd[1])
	if err != nil {
		return nil, err
	}
	msg, err := io.ReadAll(r)
	if err == nil && len(msg) == 0 {
		return p, nil // EOF: the pipe was closed by the exec of the program
	}
	// The helper failed and exits; reap it.
	_, _ = p.Wait()
	if err != nil {
		return nil, fmt.Errorf("spawn %s: helper: %w", spec.Path, err)
	}
	return nil, fmt.Errorf("spawn %s: %w", spec.Path, decodeHelperError(msg))
}

// HelperError is a failure of the helper, for example a setrlimit the
// kernel refused. It unwraps to the syscall.Errno.
type HelperError struct {
	Op  string // "setrlimit RLIMIT_NOFILE", "exec", ...
	Err error
}

func (e *HelperError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *HelperError) Unwrap() error { return e.Err }

// The helper's message is a 4-byte little-endian errno and the operation.
func encodeHelperError(op string, err error) []byte {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		errno = syscall.EINVAL
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(errno))
	return append(b, op...)
}

func decodeHelperError(msg []byte) error {
	if len(msg) < 4 {
		return &HelperError{Op: "helper", Err: errors.New("short error report")}
	}
	return &HelperError{Op: string(msg[4:]), Err: syscall.Errno(binary.LittleEndian.Uint32(msg))}
}

// runHelper is the helper: args are os.Args, laid out by startHelper as
// ARGV0 MARKER SETTINGS DIR PATH ARGV... It returns only on failure, after
// reporting it on the error pipe.
func runHelper(args []string) {
	if len(args) < 6 {
		fmt.Fprintln(os.Stderr, "spawn helper: bad arguments")
		return
	}
	s, err := decodeSettings(args[2])
	if err != nil || s.errFD < 3 {
		fmt.Fprintln(os.Stderr, "spawn helper:", err)
		return
	}
	dir, path, argv := args[3], args[4], args[5:]
	fail := func(op string, err error) {
		_, _ = syscall.Write(s.errFD, encodeHelperError(op, err))
	}
	// Closed on a successful exec, which is how the parent learns of it.
	syscall.CloseOnExec(s.errFD)

	for _, l := range s.limits {
		// syscall.Setrlimit, not unix's: for RLIMIT_NOFILE it also stops
		// syscall.Exec from restoring the soft limit the Go runtime
		// raised at start-up, which would undo this one.
		if err := syscall.Setrlimit(l.Resource, &syscall.Rlimit{Cur: l.Cur, Max: l.Max}); err != nil {
			fail("setrlimit "+rlimitName(l.Resource), err)
			return
		}
	}
	if s.umask >= 0 {
		syscall.Umask(s.umask)
	}
	// Mounts, lo and the root change need acceptd's privileges: before
	// no_new_privs and the credentials.
	if s.privateTmp {
		if op, err := mountPrivateTmp(s.chroot); err != nil {
			fail(op, err)
			return
		}
	}
	if s.loUp {
		if err := loopbackUp(); err != nil {
			fail("bring up lo", err)
			return
		}
	}
	if s.chroot != "" {
		if err := syscall.Chroot(s.chroot); err != nil {
			fail("chroot "+s.chroot, err)
			return
		}
		if dir == "" {
			dir = "/"
		}
	}
	if s.noNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			fail("prctl PR_SET_NO_NEW_PRIVS", err)
			return
		}
	}
	if c := s.cred; c != nil {
		groups := make([]int, len(c.Groups))
		for i, g := range c.Groups {
			groups[i] = int(g)
		}
		// Groups first and uid last: each step needs the privilege the
		// next one gives up. syscall's versions change every thread.
		if err := syscall.Setgroups(groups); err != nil {
			fail("setgroups", err)
			return
		}
		if err := syscall.Setresgid(int(c.Gid), int(c.Gid), int(c.Gid)); err != nil {
			fail("setgid", err)
			return
		}
		if err := syscall.Setresuid(int(c.Uid), int(c.Uid), int(c.Uid)); err != nil {
			fail("setuid", err)
			return
		}
	}
	if dir != "" {
		if err := syscall.Chdir(dir); err != nil {
			fail("chdir "+dir, err)
			return
		}
	}
	env := os.Environ()
	if s.listenPID {
		env = setEnv(env, "LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
	for i := range 3 {
		if s.closeStd&(1<<i) != 0 {
			syscall.Close(i)
		}
	}
	err = syscall.Exec(path, argv, env)
	fail("exec", err)
}

// mountPrivateTmp mounts a fresh tmpfs on /tmp, and on /var/tmp when it
// is a directory, under root. The mount namespace is the child's own and
// already private (see sysAttr), so the mounts are seen by nobody else and
// go away with the namespace's last process.
func mountPrivateTmp(root string) (string, error) {
	for i, dir := range []string{"/tmp", "/var/tmp"} {
		path := root + dir
		if i > 0 {
			if st, err := os.Stat(path); err != nil || !st.IsDir() {
				continue
			}
		}
		if err := unix.Mount("tmpfs", path, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
			return "mount tmpfs on " + path, err
		}
	}
	return "", nil
}

// loopbackUp sets IFF_UP on lo, the one device of a new network
// namespace, so that 127.0.0.1 and ::1 work in it.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// setEnv sets name to value in env, replacing every earlier value.
func setEnv(env []string, name, value string) []string {
	out := env[:0]
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != name {
			out = append(out, kv)
		}
	}
	return append(out, name+"="+value)
}

func rlimitName(res int) string {
	switch res {
	case unix.RLIMIT_AS:
		return "RLIMIT_AS"
	case unix.RLIMIT_CORE:
		return "RLIMIT_CORE"
	case unix.RLIMIT_CPU:
		return "RLIMIT_CPU"
	case unix.RLIMIT_DATA:
		return "RLIMIT_DATA"
	case unix.RLIMIT_FSIZE:
		return "RLIMIT_FSIZE"
	case unix.RLIMIT_LOCKS:
		return "RLIMIT_LOCKS"
	case unix.RLIMIT_MEMLOCK:
		return "RLIMIT_MEMLOCK"
	case unix.RLIMIT_MSGQUEUE:
		return "RLIMIT_MSGQUEUE"
	case unix.RLIMIT_NICE:
		return "RLIMIT_NICE"
	case unix.RLIMIT_NOFILE:
		return "RLIMIT_NOFILE"
	case unix.RLIMIT_NPROC:
		return "RLIMIT_NPROC"
	case unix.RLIMIT_RSS:
		return "RLIMIT_RSS"
	case unix.RLIMIT_RTPRIO:
		return "RLIMIT_RTPRIO"
	case unix.RLIMIT_RTTIME:
		return "RLIMIT_RTTIME"
	case unix.RLIMIT_SIGPENDING:
		return "RLIMIT_SIGPENDING"
	case unix.RLIMIT_STACK:
		return "RLIMIT_STACK"
	}
	return "resource " + strconv.Itoa(res)
}
