package main

import (
	"os"
	"runtime"

	"github.com/acceptd/acceptd/config"
)

// tuneProcs sets how many threads run Go code at once for cfg, unless the
// GOMAXPROCS environment variable decides.
//
// A configuration without proxy services does little in Go per
// connection: the work is the kernel's fork, exec and exit, which run on
// every core regardless. There, one P spares the scheduler its cross-thread
// wake-ups and work stealing, which on a 2-core machine cost about a third
// of acceptd's CPU per spawned connection (bench/README.md). Relays move
// data on several cores at once and keep every P. A reload that adds or
// removes the last proxy service changes it again.
// initial is GOMAXPROCS as the runtime chose it at start (the CPUs this
// process may use), which proxy configurations keep.
func tuneProcs(cfg *config.Config, initial int) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	for _, s := range cfg.Services {
		if s.Mode == config.ModeProxy {
			runtime.GOMAXPROCS(initial)
			return
		}
	}
	runtime.GOMAXPROCS(1)
}
