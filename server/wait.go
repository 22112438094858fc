package server

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// waitReadable blocks until the listening socket has a pending connection
// or datagram, without taking it, and reports false once the socket is
// closed. It asks the kernel each time rather than trusting the poller's
// edge: a wait-mode program may exit with clients still in the backlog.
func waitReadable(rc syscall.RawConn) bool {
	err := rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		return err == nil && n > 0
	})
	return err == nil
}

// watcher returns a RawConn on a duplicate of the listening socket that
// can wait for readability: the net package's listeners refuse
// RawConn.Read. Closing the listener closes it too, which ends a wait.
func (l *listener) watcher() (syscall.RawConn, error) {
	l.watchMu.Lock()
	defer l.watchMu.Unlock()
	if l.watch == nil {
		rc, err := l.rawConn()
		if err != nil {
			return nil, err
		}
		dup, err := dupFD(rc)
		if err != nil {
			return nil, err
		}
		// The duplicate shares O_NONBLOCK, so os.NewFile puts it in the
		// poller.
		l.watch = os.NewFile(uintptr(dup), l.bound)
	}
	return l.watch.SyscallConn()
}

// serveWait runs one activation of a wait-mode service (inetd "wait",
// accept = false): once the socket is readable, start the program with
// the listening socket itself and let it accept (or read datagrams) until
// it exits; then watch the socket again. It reports false when the loop
// must end (socket closed, shutdown).
func (s *service) serveWait(ctx, hctx context.Context, l *listener, st *settings) bool {
	h := st.handler.(*execHandler)
	rc, err := l.rawConn()
	if err != nil {
		s.log.Error("wait-mode socket unusable", zap.Error(err))
		return false
	}
	watch, err := l.watcher()
	if err != nil {
		s.log.Error("wait-mode socket unusable", zap.Error(err))
		return false
	}
	if !waitReadable(watch) || ctx.Err() != nil {
		return false
	}
	seq := s.seq.Add(1) - 1
	name := s.name + "@" + strconv.FormatUint(seq, 10)
	now := time.Now()
	var run running
	var serr error
	if err := rc.Control(func(fd uintptr) { run, serr = h.startOwner(name, int(fd)) }); err != nil {
		return false
	}
	if serr != nil {
		s.refused.Add(1)
		s.reasons.add(string(refusedSpawn))
		// inetd's answer to a server that cannot start: do not spin on a
		// socket that stays readable.
		s.log.Error("wait-mode program failed to start; retrying in 1s", zap.String("instance", name), zap.Error(serr))
		return sleepCtx(ctx, time.Second)
	}
	s.accepted.Add(1)
	s.connected.Add(1)
	s.conns.Add(1)
	in := &instance{name: name, local: l.bound, started: now}
	h.noteProc(in, run)
	s.insts.add(seq, in)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.conns.Done()
		o := h.finish(hctx, run, name)
		// Give the socket back to the poller for the next activation.
		rc.Control(func(fd uintptr) { unix.SetNonblock(int(fd), true) })
		s.insts.remove(seq)
		s.connected.Add(-1)
		s.logEnd(st, &Conn{Instance: name, Local: l.bound}, in, o, time.Since(now))
	}()
	select {
	case <-done:
		if r := time.Since(now); r < 100*time.Millisecond {
			// A program that exits at once without taking what is
			// pending would otherwise be restarted in a tight loop.
			return sleepCtx(ctx, 100*time.Millisecond-r)
		}
		return true
	case <-ctx.Done():
		return false
	}
}

// startOwner starts a wait-mode program on the listening socket fd. A
// long-running owner's stderr is not one connection's, so "log" passes
// acceptd's own stderr (the journal under systemd), as "inherit" does.
func (h *execHandler) startOwner(instance string, fd int) (running, error) {
	if err := unix.SetNonblock(fd, false); err != nil {
		return running{}, err
	}
	stderr := h.devNull
	switch h.ex.Stderr {
	case "inherit", "log":
		stderr = 2
	case "socket":
		stderr = fd
	}
	r, err := h.launch(h.spec(nil, instance, fd, stderr), instance)
	if err != nil {
		unix.SetNonblock(fd, true)
	}
	return r, err
}

// serveDatagram answers inetd's builtin services over UDP. Each datagram
// is answered by the service that owns the socket when it arrives, so a
// reload takes effect at the next one; serveDatagram returns true when a
// reload gave the socket to something that is not a builtin (the datagram
// is left for it), false when the socket is closed.
func serveDatagram(l *listener, idle *idleTracker) bool {
	rc, err := l.rawConn()
	if err != nil {
		return false
	}
	var one [1]byte
	ready := func(fd uintptr) bool {
		_, _, err := unix.Recvfrom(int(fd), one[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return err != unix.EAGAIN
	}
	buf := make([]byte, 65536)
	for {
		if err := rc.Read(ready); err != nil {
			return false // closed
		}
		s := l.svc.Load()
		kind := s.cur.Load().cfg.Builtin
		if kind == "" {
			return true
		}
		n, from, err := l.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return false
			}
			continue
		}
		s.accepted.Add(1)
		idle.touch()
		var reply []byte
		switch kind {
		case "echo":
			reply = buf[:n]
		case "daytime":
			reply = []byte(time.Now().Format("Mon Jan _2 15:04:05 2006") + "\r\n")
		case "time":
			reply = binary.BigEndian.AppendUint32(nil, uint32(time.Now().Unix()+rfc868Epoch))
		case "chargen":
			// RFC 864: one line per datagram, its start set by the
			// datagram's length.
			reply = chargenLine(n % 95)
		case "discard":
			continue
		}
		l.pc.WriteTo(reply, from)
	}
}
