package server

import (
	"context"
	"sync/atomic"
	"time"
)

// idleTracker knows when the last connection was accepted, for
// exit_idle_time (systemd-socket-proxyd's --exit-idle-time).
type idleTracker struct {
	last atomic.Int64 // unix nanoseconds of the last accept
}

func newIdleTracker() *idleTracker {
	t := &idleTracker{}
	t.touch()
	return t
}

func (t *idleTracker) touch() { t.last.Store(time.Now().UnixNano()) }

// wait returns true once d has passed with no connection open and none
// accepted, and false when ctx ends first.
func (t *idleTracker) wait(ctx context.Context, d time.Duration, connected func() int64) bool {
	tick := min(max(d/4, 10*time.Millisecond), time.Second)
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tk.C:
		}
		if connected() > 0 {
			t.touch()
			continue
		}
		if time.Since(time.Unix(0, t.last.Load())) >= d {
			return true
		}
	}
}
