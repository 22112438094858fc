package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/config"
	"github.com/acceptd/acceptd/spawn"
	"github.com/acceptd/acceptd/spawn/cgroup"
	"github.com/acceptd/acceptd/spawn/uidpool"
)

// sandbox is what every exec service of a Server shares to put instances
// in boxes of their own: the dynamic UID allocator and the cgroup
// hierarchy, both set up once at start-up (see docs/sandbox.md).
type sandbox struct {
	log  *zap.Logger
	uids *uidpool.Pool
	// cg is nil where no cgroup2 hierarchy is writable; instances are
	// then stopped through their process group only.
	cg *cgroup.Manager

	// pending counts instances whose processes are not all gone yet:
	// their UID and cgroup are still held and retried in the background.
	pending sync.WaitGroup
	// npending mirrors pending for the shutdown message.
	npending atomic.Int64

	// pool holds empty instance cgroups for reuse, by their limits:
	// making and removing a cgroup directory per connection costs more
	// than the rest of a spawn (mkdir and rmdir in cgroupfs take tens to
	// hundreds of microseconds). An emptied cgroup is as good as new for
	// the kill domain; its accumulated statistics are not shown.
	poolMu sync.Mutex
	pool   map[cgroup.Limits][]*cgroup.Group
	cgSeq  atomic.Uint64
	ctx    context.Context
	cancel context.CancelFunc
}

func newSandbox(cfg *config.Config, opts Options, log *zap.Logger) (*sandbox, error) {
	sb := &sandbox{log: log}
	sb.ctx, sb.cancel = context.WithCancel(context.Background())
	uids, err := uidpool.New(cfg.DynamicUsers.First, cfg.DynamicUsers.Last, uidpool.Options{Dir: opts.DynamicUIDDir})
	if err != nil {
		return nil, err
	}
	sb.uids = uids
	if !opts.NoCgroups {
		m, err := cgroup.Detect()
		if err != nil {
			// Worth a word only where there are instances: `acceptd
			// proxy` as a user would otherwise start with a
			// "permission denied" about something it never uses.
			lvl := zap.DebugLevel
			if hasExec(cfg) {
				lvl = zap.InfoLevel
			}
			log.Log(lvl, "no per-instance cgroups; instances are stopped by process group", zap.Error(err))
		} else {
			sb.cg = m
			log.Debug("per-instance cgroups", zap.String("base", m.Base()))
		}
	}
	return sb, nil
}

// hasExec reports whether cfg has a service that starts programs.
func hasExec(cfg *config.Config) bool {
	for _, svc := range cfg.Services {
		if svc.Exec != nil {
			return true
		}
	}
	return false
}

// setRange takes a reloaded dynamic_users range; UIDs held from the old
// one stay held until their instances end.
func (sb *sandbox) setRange(r config.UIDRange) {
	if err := sb.uids.SetRange(r.First, r.Last); err != nil {
		sb.log.Error("dynamic_users range not applied", zap.Error(err))
	}
}

// close waits up to d for instances whose processes are not all gone,
// then gives up on them (their UIDs are freed when acceptd exits, see
// docs/sandbox.md) and removes acceptd's cgroup directory.
func (sb *sandbox) close(d time.Duration) {
	done := make(chan struct{})
	go func() {
		sb.pending.Wait()
		close(done)
	}()
	wait := time.NewTimer(d)
	defer wait.Stop()
	select {
	case <-done:
	case <-wait.C:
		if sb.pendingNow() == 0 {
			<-done
			break
		}
		sb.log.Warn("processes of ended instances still running at exit; their dynamic UIDs are given up")
		sb.cancel()
		<-done
	}
	sb.cancel()
	sb.poolMu.Lock()
	for _, gs := range sb.pool {
		for _, g := range gs {
			_ = g.Remove()
		}
	}
	sb.pool = nil
	sb.poolMu.Unlock()
	if sb.cg != nil {
		if err := sb.cg.Close(); err != nil {
			sb.log.Warn("cgroup directory not removed", zap.Error(err))
		}
	}
}

// box is what one instance holds beyond its process: a dynamic UID
// (uid < 0: none) and a cgroup (nil: none).
type box struct {
	uid int64
	lim cgroup.Limits
	// mu guards cg against a late stop (shutdown, runtime_max) that
	// races with the end of the instance: once the cgroup is emptied and
	// pooled it may hold another instance, which must not be signalled.
	mu sync.Mutex
	cg *cgroup.Group
}

// maxPooled bounds the empty cgroups kept per set of limits.
const maxPooled = 64

// takeGroup returns a pooled empty cgroup with limits lim, or makes one.
func (sb *sandbox) takeGroup(lim cgroup.Limits) (*cgroup.Group, error) {
	sb.poolMu.Lock()
	if gs := sb.pool[lim]; len(gs) > 0 {
		g := gs[len(gs)-1]
		sb.pool[lim] = gs[:len(gs)-1]
		sb.poolMu.Unlock()
		return g, nil
	}
	sb.poolMu.Unlock()
	return sb.cg.Create("i"+strconv.FormatUint(sb.cgSeq.Add(1), 10), lim)
}

// putGroup keeps an empty cgroup for the next instance with the same
// limits, or removes it when the pool is full or closed, or when it was
// killed (cgroup.Group.Reusable).
func (sb *sandbox) putGroup(g *cgroup.Group, lim cgroup.Limits) {
	sb.poolMu.Lock()
	if sb.ctx.Err() == nil && len(sb.pool[lim]) < maxPooled && g.Reusable() {
		if sb.pool == nil {
			sb.pool = map[cgroup.Limits][]*cgroup.Group{}
		}
		sb.pool[lim] = append(sb.pool[lim], g)
		g = nil
	}
	sb.poolMu.Unlock()
	if g != nil {
		_ = g.Remove()
	}
}

// boxConfig is the part of an exec service that decides its box.
type boxConfig struct {
	dynamicUser bool
	limits      cgroup.Limits
}

// boxConfigFor checks once, when a service is (re)configured, which of its
// settings this host can honour, and says so in the log.
func (sb *sandbox) boxConfigFor(ex *config.Exec, log *zap.Logger) boxConfig {
	bc := boxConfig{dynamicUser: ex.DynamicUser}
	want := map[string]bool{"pids": ex.TasksMax > 0, "memory": ex.MemoryMax > 0}
	for ctrl, on := range want {
		if !on {
			continue
		}
		switch {
		case sb.cg == nil:
			log.Warn("limit not applied: no writable cgroup2 hierarchy", zap.String("controller", ctrl))
		case !sb.cg.Available(ctrl):
			log.Warn("limit not applied: controller not available in the cgroup2 hierarchy", zap.String("controller", ctrl))
		case ctrl == "pids":
			bc.limits.TasksMax = ex.TasksMax
		default:
			bc.limits.MemoryMax = ex.MemoryMax
		}
	}
	return bc
}

// errNoDynamicUser marks a spawn refused because the range is exhausted.
var errNoDynamicUser = errors.New("no dynamic user left")

// prepare fills in sp what the box of instance needs and returns the box,
// or nil when the instance needs none.
func (sb *sandbox) prepare(bc boxConfig, sp *spawn.Spec, instance string) (*box, error) {
	if !bc.dynamicUser && sb.cg == nil {
		return nil, nil
	}
	bx := &box{uid: -1}
	if bc.dynamicUser {
		uid, err := sb.uids.Acquire(instance)
		if err != nil {
			if errors.Is(err, uidpool.ErrExhausted) {
				return nil, fmt.Errorf("%w: %w", errNoDynamicUser, err)
			}
			return nil, err
		}
		bx.uid = int64(uid)
		sp.Credential = &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}
		sp.NoNewPrivs = true
	}
	if sb.cg != nil {
		g, err := sb.takeGroup(bc.limits)
		if err != nil {
			sb.release(bx)
			return nil, err
		}
		bx.cg, bx.lim = g, bc.limits
		sp.UseCgroupFD, sp.CgroupFD = true, g.FD()
	}
	return bx, nil
}

// started is called after spawn.Start, which failed when err != nil: then
// nothing ran (the helper is waited for) and the box is given back.
func (sb *sandbox) started(bx *box, err error) {
	if bx == nil {
		return
	}
	if err != nil {
		if bx.cg != nil {
			_ = bx.cg.Kill() // a helper cannot linger, but be sure
		}
		sb.end(bx, "")
	}
}

// release gives back what a box holds without looking for processes: for
// boxes no process ever ran in.
func (sb *sandbox) release(bx *box) {
	if bx.cg != nil {
		_ = bx.cg.Remove()
	}
	if bx.uid >= 0 {
		sb.uids.Release(uint32(bx.uid))
	}
}

// hasCgroup reports whether the instance runs in a cgroup of its own.
func (bx *box) hasCgroup() bool {
	bx.mu.Lock()
	defer bx.mu.Unlock()
	return bx.cg != nil
}

// terminate sends SIGTERM to every process of the box's cgroup, also to
// those that left the process group; [spawn.Process.Stop] does the rest.
func (bx *box) terminate() {
	if bx == nil {
		return
	}
	bx.mu.Lock()
	defer bx.mu.Unlock()
	if bx.cg != nil {
		_ = bx.cg.Signal(syscall.SIGTERM)
	}
}

// end is called once the instance's main process has been reaped: what is
// left of it is killed (cgroup) or waited for (dynamic UID without a
// cgroup), and the UID is given back only when no process of the
// instance is left. Until then it is held, retried in the background.
func (sb *sandbox) end(bx *box, instance string) {
	if bx == nil || sb.tryEnd(bx) {
		return
	}
	sb.pending.Add(1)
	sb.npending.Add(1)
	go sb.retry(bx, instance)
}

// tryEnd reports whether the box is empty and released.
func (sb *sandbox) tryEnd(bx *box) bool {
	bx.mu.Lock()
	defer bx.mu.Unlock()
	if bx.cg != nil {
		pop, err := bx.cg.Populated()
		if err != nil || pop {
			// As spawn kills the rest of the process group when the main
			// process has exited, so the cgroup: all of it.
			_ = bx.cg.Kill()
			return false
		}
		sb.putGroup(bx.cg, bx.lim)
		bx.cg = nil
	} else if bx.uid >= 0 && uidInUse(uint32(bx.uid)) {
		return false
	}
	if bx.uid >= 0 {
		sb.uids.Release(uint32(bx.uid))
		bx.uid = -1
	}
	return true
}

func (sb *sandbox) pendingNow() int64 { return sb.npending.Load() }

func (sb *sandbox) retry(bx *box, instance string) {
	defer sb.pending.Done()
	defer sb.npending.Add(-1)
	delay := time.Millisecond
	start := time.Now()
	warned := false
	for {
		select {
		case <-time.After(delay):
		case <-sb.ctx.Done():
			return
		}
		if sb.tryEnd(bx) {
			if warned {
				sb.log.Info("processes of instance gone; dynamic user released", zap.String("instance", instance))
			}
			return
		}
		delay = min(2*delay, time.Second)
		if !warned && time.Since(start) > 2*time.Second {
			warned = true
			fields := []zap.Field{zap.String("instance", instance)}
			if bx.uid >= 0 {
				fields = append(fields, zap.Int64("uid", bx.uid))
			}
			if bx.cg != nil {
				fields = append(fields, zap.String("cgroup", bx.cg.Path()))
			}
			sb.log.Warn("processes of ended instance still running; holding its user and cgroup", fields...)
		}
	}
}

// uidInUse reports whether a process runs with uid as its real,
// effective, saved or filesystem UID, from /proc/PID/status. It reads
// every process's status (about 10µs each), so it is used only for
// dynamic users without a cgroup, once per ended instance.
func uidInUse(uid uint32) bool {
	d, err := os.Open("/proc")
	if err != nil {
		return true // cannot tell: keep it held
	}
	defer d.Close()
	want := []byte(strconv.FormatUint(uint64(uid), 10))
	buf := make([]byte, 4096)
	for {
		names, err := d.Readdirnames(256)
		for _, name := range names {
			if name[0] < '0' || name[0] > '9' {
				continue
			}
			if statusHasUID("/proc/"+name+"/status", want, buf) {
				return true
			}
		}
		if err != nil {
			return false
		}
	}
}

func statusHasUID(path string, want, buf []byte) bool {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false // gone
	}
	n, _ := unix.Read(fd, buf)
	unix.Close(fd)
	if n <= 0 {
		return false
	}
	// A zombie holds nothing and may wait long for a reaper that is
	// not ours (a container's init).
	if bytes.Contains(buf[:n], []byte("\nState:\tZ")) {
		return false
	}
	i := bytes.Index(buf[:n], []byte("\nUid:"))
	if i < 0 {
		return false
	}
	line := buf[i+5 : n]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	for _, f := range bytes.Fields(line) {
		if bytes.Equal(f, want) {
			return true
		}
	}
	return false
}
