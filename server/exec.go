package server

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sort"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/config"
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
}

func newExecHandler(svc *config.Service, devNull int, log *zap.Logger, obs Observer) *execHandler {
	ex := svc.Exec
	h := &execHandler{service: svc.Name, ex: ex, devNull: devNull, log: log, obs: obs}
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

func (h *execHandler) spec(c *Conn, fd int, stderr int) *spawn.Spec {
	env := make([]string, 0, 16+len(h.env))
	env = spawn.ConnEnv(env, &c.Peer, h.service, c.Instance)
	if len(h.env) > 0 {
		env = spawn.MergeEnv(append(env, h.env...))
	}
	umask := -1
	if h.ex.Umask != nil {
		umask = int(*h.ex.Umask)
	}
	sp := &spawn.Spec{
		Path:        h.ex.Command[0],
		Args:        h.ex.Command,
		Env:         env,
		Dir:         h.ex.WorkingDirectory,
		Files:       []int{fd, fd, stderr},
		Credential:  h.cred,
		NoNewPrivs:  h.ex.NoNewPrivileges,
		Umask:       umask,
		StopTimeout: h.ex.StopTimeout,
	}
	for _, l := range h.ex.Limits {
		sp.Limits = append(sp.Limits, spawn.Rlimit{Resource: l.Resource, Cur: l.Cur, Max: l.Max})
	}
	return sp
}

// Handle starts the program on c and waits for it. The parent's copy of the
// socket is closed as soon as the child has it: from then on the child
// alone owns the connection, and its close is what the client sees.
func (h *execHandler) Handle(ctx context.Context, c *Conn, in *instance) outcome {
	rc, err := c.Conn.(interface {
		SyscallConn() (syscall.RawConn, error)
	}).SyscallConn()
	if err != nil {
		c.Close()
		return outcome{refused: refusedSpawn, err: err}
	}
	var logR *os.File
	stderr := h.devNull
	var proc *spawn.Process
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		// The child must see a blocking socket, as inetd programs
		// expect; O_NONBLOCK lives in the shared file description, and
		// acceptd closes its copy right after.
		if err := unix.SetNonblock(int(fd), false); err != nil {
			serr = fmt.Errorf("set blocking: %w", err)
			return
		}
		switch h.ex.Stderr {
		case config.StderrSocket:
			stderr = int(fd)
		case config.StderrInherit:
			stderr = 2
		case config.StderrLog:
			r, w, err := os.Pipe()
			if err != nil {
				serr = fmt.Errorf("stderr pipe: %w", err)
				return
			}
			logR = r
			defer w.Close()
			stderr = int(w.Fd())
		}
		proc, serr = spawn.Start(h.spec(c, int(fd), stderr))
	})
	c.Close()
	if cerr != nil && serr == nil {
		serr = cerr
	}
	if serr != nil {
		if logR != nil {
			logR.Close()
		}
		return outcome{refused: refusedSpawn, err: serr}
	}
	if h.obs != nil {
		h.obs.SpawnLatency(h.service, time.Since(c.Accepted))
	}
	in.pid.Store(int64(proc.Pid()))
	if h.cred != nil {
		in.uid.Store(int64(h.cred.Uid))
		in.gid.Store(int64(h.cred.Gid))
	} else {
		in.uid.Store(int64(os.Geteuid()))
		in.gid.Store(int64(os.Getegid()))
	}
	in.proc.Store(proc)

	logDone := make(chan struct{})
	if logR != nil {
		go h.copyStderr(logR, c.Instance, int(proc.Pid()), logDone)
	} else {
		close(logDone)
	}

	// Shutdown and runtime_max stop the process group; neither costs a
	// goroutine while the instance runs normally.
	stopOnCancel := context.AfterFunc(ctx, proc.Stop)
	defer stopOnCancel()
	var timedOut atomic.Bool
	if h.ex.RuntimeMax > 0 {
		t := time.AfterFunc(h.ex.RuntimeMax, func() {
			timedOut.Store(true)
			proc.Stop()
		})
		defer t.Stop()
	}
	res, err := proc.Wait()
	select {
	case <-logDone:
	case <-time.After(time.Second):
		// A descendant that left the process group still holds the
		// pipe; stop reading rather than keep the instance alive.
		logR.Close()
		<-logDone
	}
	o := outcome{result: &res, err: err}
	o.failed = !res.Exited || (res.ExitCode != 0 && !h.ex.IgnoreExitStatus)
	if timedOut.Load() {
		o.err = fmt.Errorf("runtime_max %s reached", h.ex.RuntimeMax)
	}
	return o
}

// copyStderr logs each line the child writes to stderr, until every holder
// of the pipe's write end has closed it.
func (h *execHandler) copyStderr(r *os.File, instance string, pid int, done chan<- struct{}) {
	defer close(done)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		h.log.Info(sc.Text(), zap.String("instance", instance), zap.Int("pid", pid), zap.String("stream", "stderr"))
	}
}
