//go:build !linux

package relay

import (
	"errors"
	"time"
)

// Engine needs epoll and splice; elsewhere NewEngine returns nil and
// callers relay with Relay. The methods accept the nil Engine.
type Engine struct{}

// Job is as on Linux.
type Job struct {
	Client, Backend int
	Connecting      bool
	ConnectTimeout  time.Duration
	Preamble        []byte
	Sent            int64
	IdleTimeout     time.Duration
	Done            func(Result)
}

// Forward does nothing: there is no engine on this platform.
func (j *Job) Forward(buf []byte) {}

// NewEngine returns nil: there is no engine on this platform.
func NewEngine() *Engine { return nil }

// Start fails: there is no engine on this platform.
func (e *Engine) Start() error { return errors.ErrUnsupported }

// Add fails: there is no engine on this platform.
func (e *Engine) Add(j *Job) error { return errors.ErrUnsupported }

// AbortAll has nothing to abort.
func (e *Engine) AbortAll(err error) {}

// Close is a no-op.
func (e *Engine) Close() error { return nil }

func (e *Engine) idlePipes() int { return 0 }
