package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/config"
	"github.com/acceptd/acceptd/internal/rawsock"
	"github.com/acceptd/acceptd/spawn"
)

// execHandler starts one process per connection with the socket on its
// stdin and stdout (inetd "nowait", systemd Accept=yes).
type execHandler struct {
	service string
	ex      *config.Exec
	// env is the configured environment as NAME=VALUE, merged after the
	// per-connection variables so that it wins.
	env     []string
	cred    *syscall.Credential
	devNull int
	log     *zap.Logger
	obs     Observer

	// sb and bc put each instance in its box (dynamic user, cgroup).
	sb *sandbox
	bc boxConfig
	// euid and egid are acceptd's own, shown for instances that run as
	// acceptd's user (read once: they do not change).
	euid, egid int64
	// stderrBufs holds logLines' readers (*bufio.Reader).
	stderrBufs sync.Pool
}

func newExecHandler(svc *config.Service, devNull int, log *zap.Logger, obs Observer, sb *sandbox) *execHandler {
	ex := svc.Exec
	h := &execHandler{service: svc.Name, ex: ex, devNull: devNull, log: log, obs: obs, sb: sb,
		euid: int64(os.Geteuid()), egid: int64(os.Getegid())}
	h.bc = sb.boxConfigFor(ex, log)
	keys := make([]string, 0, len(ex.Environment))
	for k := range ex.Environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h.env = append(h.env, k+"="+ex.Environment[k])
	}
	h.cred = credential(ex.User, ex.Group)
	return h
}

// credential turns a configured user and group into the child's
// credential: the user's own supplementary groups and nothing of acceptd's.
// A nil result means acceptd's own user.
func credential(u *config.UserSpec, g *config.GroupSpec) *syscall.Credential {
	if u == nil && g == nil {
		return nil
	}
	c := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), Groups: []uint32{}}
	if u != nil {
		c.Uid, c.Gid = u.UID, u.GID
		c.Groups = append(c.Groups, u.Groups...)
	}
	if g != nil {
		c.Gid = g.GID
	}
	return c
}

// spec builds the child's Spec for socket fd. peer is nil for a wait-mode
// owner of the listening socket, which has no single peer.
func (h *execHandler) spec(peer *spawn.Conn, instance string, fd int, stderr int) *spawn.Spec {
	env := make([]string, 0, 20+len(h.env))
	if peer != nil {
		env = spawn.ConnEnv(env, peer, h.service, instance)
	} else {
		env = append(env, "PATH="+spawn.DefaultPath, "ACCEPTD_SERVICE="+h.service, "ACCEPTD_INSTANCE="+instance)
	}
	umask := -1
	if h.ex.Umask != nil {
		umask = int(*h.ex.Umask)
	}
	sp := &spawn.Spec{
		Path:        h.ex.Command[0],
		Args:        h.ex.Command,
		Dir:         h.ex.WorkingDirectory,
		Files:       []int{fd, fd, stderr},
		Credential:  h.cred,
		NoNewPrivs:  h.ex.NoNewPrivileges,
		Umask:       umask,
		StopTimeout: h.ex.StopTimeout,
		Chroot:      h.ex.Chroot,
		PrivateTmp:  h.ex.PrivateTmp,
		// private_network: a network namespace with lo only; the
		// connection, made in acceptd's namespace, keeps working.
		PrivateNetwork: h.ex.PrivateNetwork,
		// A per-connection instance does not hold the spawning thread
		// (an accept loop) until its exec; a failed exec is refused
		// when it is reaped (see finish). A wait-mode owner's is
		// known at once, to back off before the socket is watched
		// again.
		NoExecWait: peer != nil,
	}
	if h.ex.Pass == config.PassListenFDs {
		// As systemd passes sockets: fd 3, LISTEN_FDS=1, LISTEN_PID the
		// child's own pid (set by the spawn helper after fork), and the
		// name "connection" for an accepted one.
		name := "connection"
		if peer == nil {
			name = h.service
			sp.Files[0], sp.Files[1] = h.devNull, h.devNull
		}
		sp.Files = append(sp.Files, fd)
		env = append(env, "LISTEN_FDS=1", "LISTEN_FDNAMES="+name)
		sp.ListenPID = true
	}
	if len(h.env) > 0 {
		env = spawn.MergeEnv(append(env, h.env...))
	}
	sp.Env = env
	for _, l := range h.ex.Limits {
		sp.Limits = append(sp.Limits, spawn.Rlimit{Resource: l.Resource, Cur: l.Cur, Max: l.Max})
	}
	return sp
}

// running is one started instance process and what belongs to it, handed
// from start to finish.
type running struct {
	proc *spawn.Process
	// log is the child's stderr pipe (stderr = "log"); nil otherwise.
	log *stderrLog
	// bx is its dynamic user and cgroup; nil when it has neither.
	bx *box
}

// start starts the program on socket fd (called inside RawConn.Control,
// so fd stays valid).
func (h *execHandler) start(peer *spawn.Conn, instance string, fd int, blocking bool) (running, error) {
	// The child must see a blocking socket, as inetd programs expect;
	// O_NONBLOCK lives in the shared file description.
	if !blocking {
		if err := unix.SetNonblock(fd, false); err != nil {
			return running{}, fmt.Errorf("set blocking: %w", err)
		}
	}
	logR := -1
	stderr := h.devNull
	switch h.ex.Stderr {
	case config.StderrSocket:
		stderr = fd
	case config.StderrInherit:
		stderr = 2
	case config.StderrLog:
		r, w, err := stderrPipe()
		if err != nil {
			return running{}, fmt.Errorf("stderr pipe: %w", err)
		}
		defer rawsock.Close(w)
		logR = r
		stderr = w
	}
	r, err := h.launch(h.spec(peer, instance, fd, stderr), instance)
	if err != nil {
		if logR >= 0 {
			rawsock.Close(logR)
		}
		return running{}, err
	}
	if logR >= 0 {
		r.log = &stderrLog{h: h, fd: logR, instance: instance, pid: r.proc.Pid()}
	}
	return r, nil
}

// launch starts sp for instance in its box: a dynamic user and a cgroup
// when the service and the host have them. Services with neither go
// straight to spawn.Start.
func (h *execHandler) launch(sp *spawn.Spec, instance string) (running, error) {
	bx, err := h.sb.prepare(h.bc, sp, instance)
	if err != nil {
		return running{}, err
	}
	proc, err := spawn.Start(sp)
	h.sb.started(bx, err)
	if err != nil {
		return running{}, err
	}
	return running{proc: proc, bx: bx}, nil
}

// spawnRetryFor bounds how long a connection waits for acceptd to have
// descriptors or processes again before it is refused.
const spawnRetryFor = 5 * time.Second

// startRetry is start, retried with a growing pause while the failure is
// a shortage (out of fds, process limit, memory) that ending instances
// will relieve: the client waits, as it would in the backlog, instead of
// being dropped. On the fast path this also holds the accept loop, so
// nothing more is accepted meanwhile.
func (h *execHandler) startRetry(ctx context.Context, log *zap.Logger, peer *spawn.Conn, instance string, fd int, blocking bool) (running, error) {
	deadline := time.Now().Add(spawnRetryFor)
	delay := 5 * time.Millisecond
	for {
		r, err := h.start(peer, instance, fd, blocking)
		if err == nil || !(isResourceExhausted(err) || errors.Is(err, unix.EAGAIN)) || time.Now().Add(delay).After(deadline) {
			return r, err
		}
		log.Warn("spawn failed for lack of resources; retrying", zap.String("instance", instance), zap.Error(err), zap.Duration("retry_in", delay))
		if !sleepCtx(ctx, delay) {
			return running{}, err
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// noteProc records a started process in the instance for the status.
func (h *execHandler) noteProc(in *instance, r running) {
	in.pid.Store(int64(r.proc.Pid()))
	switch {
	case r.bx != nil && r.bx.uid >= 0:
		in.uid.Store(r.bx.uid)
		in.gid.Store(r.bx.uid)
	case h.cred != nil:
		in.uid.Store(int64(h.cred.Uid))
		in.gid.Store(int64(h.cred.Gid))
	default:
		in.uid.Store(h.euid)
		in.gid.Store(h.egid)
	}
	in.proc.Store(r.proc)
}

// Handle starts the program on c and waits for it. The parent's copy of the
// socket is closed as soon as the child has it: from then on the child
// alone owns the connection, and its close is what the client sees.
func (h *execHandler) Handle(ctx context.Context, c *Conn, in *instance) outcome {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		c.Close()
		return outcome{refused: refusedSpawn, err: errors.New("connection has no descriptor")}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		c.Close()
		return outcome{refused: refusedSpawn, err: err}
	}
	var r running
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		r, serr = h.startRetry(ctx, h.log, &c.Peer, c.Instance, int(fd), false)
	})
	c.Close()
	if cerr != nil && serr == nil {
		serr = cerr
	}
	if serr != nil {
		why := refusedSpawn
		if errors.Is(serr, errNoDynamicUser) {
			why = refusedDynUser
		}
		return outcome{refused: why, err: serr}
	}
	if h.obs != nil {
		h.obs.SpawnLatency(h.service, time.Since(c.Accepted))
	}
	h.noteProc(in, r)
	return h.finish(ctx, r, c.Instance)
}

// finish waits for proc, logging its stderr, and stops its process group
// when ctx ends or runtime_max passes.
func (h *execHandler) finish(ctx context.Context, r running, instance string) outcome {
	proc, bx := r.proc, r.bx
	if r.log != nil {
		r.log.start()
	}
	// Shutdown and runtime_max stop the process group (and the cgroup's
	// processes that left it); neither costs a goroutine while the
	// instance runs normally.
	stop := proc.Stop
	if bx != nil && bx.hasCgroup() {
		stop = func() {
			proc.Stop()
			bx.terminate()
		}
	}
	stopOnCancel := context.AfterFunc(ctx, stop)
	defer stopOnCancel()
	var timedOut atomic.Bool
	if h.ex.RuntimeMax > 0 {
		t := time.AfterFunc(h.ex.RuntimeMax, func() {
			timedOut.Store(true)
			stop()
		})
		defer t.Stop()
	}
	res, err := proc.Wait()
	if bx != nil {
		// What is left of the instance is killed (cgroup) or waited
		// for; its UID is held until then.
		h.sb.end(bx, instance)
	}
	if r.log != nil {
		r.log.end()
	}
	if res.ExecErr != nil {
		// The program never ran (Spec.NoExecWait): refused, as a
		// spawn that fails in Start is.
		return outcome{refused: refusedSpawn, err: res.ExecErr}
	}
	o := outcome{result: &res, err: err}
	o.failed = !res.Exited || (res.ExitCode != 0 && !h.ex.IgnoreExitStatus)
	if timedOut.Load() {
		o.err = fmt.Errorf("runtime_max %s reached", h.ex.RuntimeMax)
	}
	return o
}

// stderrPipe makes the pipe through which a child's stderr is logged: the
// read end non-blocking, the write end (the child's) blocking; both plain
// descriptors, the write end for the caller to close once the child has
// it. os.Pipe puts both ends in the netpoller, and the child's end must
// then be made blocking again: per connection, four fcntl calls and an
// epoll_ctl pair more, through the runtime's syscall path.
func stderrPipe() (r, w int, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return -1, -1, os.NewSyscallError("pipe2", err)
	}
	// The read end's file status flags are its own (O_RDONLY, which
	// F_SETFL leaves alone): O_NONBLOCK is all it gets.
	if _, _, e := unix.RawSyscall(unix.SYS_FCNTL, uintptr(p[0]), unix.F_SETFL, unix.O_NONBLOCK); e != 0 {
		rawsock.Close(p[0])
		rawsock.Close(p[1])
		return -1, -1, os.NewSyscallError("fcntl", e)
	}
	return p[0], p[1], nil
}

// stderrBufSize is the line buffer of logLines.
const stderrBufSize = 4096

// stderrFollowAfter is how long a child runs before its stderr is read as
// it comes. Most per-connection programs are done sooner: their stderr
// is read once, when they exit, without a goroutine or a netpoller
// registration (about 5% of the connections/s at one client, with
// stderr logged, side by side with stderr = "null"). A line is logged at
// most this late, and a child that fills the pipe (64 KiB) sooner waits
// at most this long.
const stderrFollowAfter = 50 * time.Millisecond

// stderrLog is the read end of a child's stderr pipe, a raw non-blocking
// descriptor until it has to be waited on.
type stderrLog struct {
	h        *execHandler
	fd       int
	instance string
	pid      int

	// follow starts the follower goroutine once the child has run for
	// stderrFollowAfter; ready is closed when the follower has made f,
	// done when it has finished.
	follow      *time.Timer
	ready, done chan struct{}
	// f is fd in the netpoller, made by the follower, or by Read when
	// the child has exited but a descendant may still write.
	f        *os.File
	deadline time.Time
}

// start arms the follower; end must be called once the child has exited.
func (l *stderrLog) start() {
	l.ready, l.done = make(chan struct{}), make(chan struct{})
	l.follow = time.AfterFunc(stderrFollowAfter, func() {
		l.f = os.NewFile(uintptr(l.fd), "stderr") // non-blocking: in the netpoller
		close(l.ready)
		defer close(l.done)
		l.h.logLines(l.f, l.instance, l.pid)
	})
}

// end logs what is left once the child has exited, and closes the pipe.
// It waits at most a second for a descendant that left the process group
// and still holds the pipe, rather than keep the instance alive.
func (l *stderrLog) end() {
	if l.follow.Stop() {
		// Never followed: read what the child wrote (Read waits in the
		// netpoller only if someone still holds the write end).
		l.deadline = time.Now().Add(time.Second)
		l.h.logLines(l, l.instance, l.pid)
	} else {
		<-l.ready
		select {
		case <-l.done:
		default:
			// (No timer when the follower is done already, the usual case.)
			t := time.NewTimer(time.Second)
			select {
			case <-l.done:
			case <-t.C:
				l.f.SetReadDeadline(time.Now())
				<-l.done
			}
			t.Stop()
		}
	}
	if l.f != nil {
		l.f.Close()
	} else {
		rawsock.Close(l.fd)
	}
}

// Read reads the pipe for end: raw while there is data or an EOF; when
// there is neither yet, in the netpoller until the deadline.
func (l *stderrLog) Read(b []byte) (int, error) {
	for l.f == nil {
		n, err := rawsock.Read(l.fd, b)
		switch {
		case err == nil && n == 0 && len(b) > 0:
			return 0, io.EOF
		case err == nil:
			return n, nil
		case err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return 0, err
		}
		l.f = os.NewFile(uintptr(l.fd), "stderr")
		l.f.SetReadDeadline(l.deadline)
	}
	return l.f.Read(b)
}

// logLines logs each line read from r, until r fails (EOF: every holder
// of the pipe's write end has closed it).
func (h *execHandler) logLines(r io.Reader, instance string, pid int) {
	// Most programs write nothing to stderr: the buffer is reused, not
	// made per connection.
	br, _ := h.stderrBufs.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(r, stderrBufSize)
	} else {
		br.Reset(r)
	}
	defer func() {
		br.Reset(nil)
		h.stderrBufs.Put(br)
	}()
	for {
		// A line longer than the buffer is logged in pieces rather than
		// left unread: a child blocked on a full stderr pipe would hang.
		line, _, err := br.ReadLine()
		if len(line) > 0 {
			h.log.Info(string(line), zap.String("instance", instance), zap.Int("pid", pid), zap.String("stream", "stderr"))
		}
		if err != nil {
			return
		}
	}
}
