//go:build !linux

package relay

import (
	"errors"
	"time"
)

// Engine needs epoll and splice; elsewhere Add always fails and callers
// relay with Relay.
type Engine struct{}

// Job is as on Linux.
type Job struct {
	Client, Backend int
	Connecting      bool
	ConnectTimeout  time.Duration
	Done            func(Result)
}

// NewEngine returns an Engine whose Add fails.
func NewEngine() *Engine { return &Engine{} }

// Add fails: there is no engine on this platform.
func (e *Engine) Add(j *Job) error { return errors.ErrUnsupported }

// AbortAll has nothing to abort.
func (e *Engine) AbortAll(err error) {}

// Close is a no-op.
func (e *Engine) Close() error { return nil }

func (e *Engine) idlePipes() int { return 0 }
