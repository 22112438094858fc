package spawn

import (
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// origNofile returns the RLIMIT_NOFILE a child must get when it differs
// from acceptd's own (nil when it does not), acceptd's own limit at the
// time it looked, and whether it could find them.
//
// Go raises its own soft limit to the hard one at start-up and gives
// children of syscall.ForkExec the original back, keeping it in a
// variable of package syscall that nobody else can read; vforkStart must
// do the same. The original is asked, once, of a shell started the usual
// way, which has it: `ulimit -Sn`. It is a fact about how this process
// was started, fixed for its life.
var origNofile = sync.OnceValue(func() nofileLimits {
	var l nofileLimits
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &l.own); err != nil {
		return l
	}
	out, err := exec.Command("/bin/sh", "-c", "ulimit -Sn").Output()
	if err != nil {
		return l
	}
	soft := l.own.Max
	if s := strings.TrimSpace(string(out)); s != "unlimited" {
		if soft, err = strconv.ParseUint(s, 10, 64); err != nil {
			return l
		}
	}
	l.ok = true
	if soft != l.own.Cur {
		l.orig = &unix.Rlimit{Cur: soft, Max: l.own.Max}
	}
	return l
})

type nofileLimits struct {
	orig *unix.Rlimit // nil: children inherit acceptd's own
	own  unix.Rlimit
	ok   bool
}

// forChild returns the limit to set in a child, or nil to let it inherit
// acceptd's. As syscall.ForkExec does, the original is given back only
// while acceptd's own limit is still the one Go set: somebody who changed
// it since (prlimit, an operator lowering it) meant it for the children
// too.
func (l nofileLimits) forChild() *unix.Rlimit {
	if l.orig == nil {
		return nil
	}
	var now unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &now); err != nil || now != l.own {
		return nil
	}
	return l.orig
}
