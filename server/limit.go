package server

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/acceptd/acceptd/config"
)

// slots counts a service's open connections against max_connections and
// max_connections_per_source. It lives as long as the service, across
// reloads, so that connections started under the old settings still count
// against the new ones.
type slots struct {
	mu     sync.Mutex
	active int
	max    int
	// freed, while an accept loop waits with overflow = "wait", is closed
	// (and forgotten) when a slot is given back; nil while nobody waits,
	// so that a connection's end costs no channel.
	freed chan struct{}
	// stopped: the server stops accepting; waitFree waits no more.
	stopped bool

	perSource map[netip.Prefix]int
	maxSource int
	prefix4   int
	prefix6   int
}

func newSlots() *slots {
	return &slots{perSource: map[netip.Prefix]int{}}
}

// configure takes the limits of a (new) service config.
func (s *slots) configure(c *config.Service) {
	s.mu.Lock()
	s.max = c.MaxConnections
	s.maxSource = c.MaxConnectionsPerSource
	s.prefix4, s.prefix6 = c.SourcePrefixV4, c.SourcePrefixV6
	s.wakeLocked()
	s.mu.Unlock()
}

// stop ends every wait for a slot, now and later (shutdown).
func (s *slots) stop() {
	s.mu.Lock()
	s.stopped = true
	s.wakeLocked()
	s.mu.Unlock()
}

func (s *slots) wakeLocked() {
	if s.freed != nil {
		close(s.freed)
		s.freed = nil
	}
}

// source returns the client key of addr for the per-source limit: its
// prefix of source_prefix_v4/v6 bits. The zero Prefix means "no address"
// (UNIX peers), which the per-source limit does not apply to.
func (s *slots) source(addr netip.Addr) netip.Prefix {
	if !addr.IsValid() || s.maxSource <= 0 {
		return netip.Prefix{}
	}
	addr = addr.Unmap()
	bits := s.prefix6
	if addr.Is4() {
		bits = s.prefix4
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// refusal names why a connection was not served; it is the reason in the
// log line and in the refused counters.
type refusal string

const (
	refusedLimit     refusal = "limit"
	refusedPerSource refusal = "per_source"
	refusedDeny      refusal = "deny"
	refusedSpawn     refusal = "spawn"
	refusedConnect   refusal = "connect"
	refusedProxyHdr  refusal = "proxy_header"
	refusedHandoff   refusal = "handoff"
	refusedDynUser   refusal = "dynamic_user"
)

// acquire takes a slot for a client at addr, or says why not.
func (s *slots) acquire(addr netip.Addr) (netip.Prefix, refusal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active >= s.max {
		return netip.Prefix{}, refusedLimit
	}
	src := s.source(addr)
	if src.IsValid() {
		if s.perSource[src] >= s.maxSource {
			return netip.Prefix{}, refusedPerSource
		}
		s.perSource[src]++
	}
	s.active++
	return src, ""
}

// release gives back a slot taken by acquire.
func (s *slots) release(src netip.Prefix) {
	s.mu.Lock()
	s.active--
	if src.IsValid() {
		if n := s.perSource[src] - 1; n > 0 {
			s.perSource[src] = n
		} else {
			delete(s.perSource, src)
		}
	}
	s.wakeLocked()
	s.mu.Unlock()
}

// waitFree blocks until fewer than max slots are taken, for overflow =
// "wait": the accept loop then leaves further clients in the kernel's
// backlog instead of accepting them. It reports false when ctx ends first
// or the slots are stopped.
func (s *slots) waitFree(ctx context.Context) bool {
	for {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return false
		}
		if s.active < s.max {
			s.mu.Unlock()
			return true
		}
		if s.freed == nil {
			s.freed = make(chan struct{})
		}
		ch := s.freed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// acl is a service's allow and deny lists. Deny wins over allow; an empty
// allow list allows every address. Peers without an IP address (UNIX
// sockets) are governed by the socket file's mode instead.
type acl struct {
	allow, deny []netip.Prefix
}

func (a acl) allows(addr netip.Addr) bool {
	if !addr.IsValid() {
		return true
	}
	addr = addr.Unmap()
	for _, p := range a.deny {
		if p.Contains(addr) {
			return false
		}
	}
	if len(a.allow) == 0 {
		return true
	}
	for _, p := range a.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// rateLimiter allows at most n accepted connections per interval (a fixed
// window). It is used by one accept loop at a time per listener, hence the
// mutex: a service may have several listeners.
type rateLimiter struct {
	mu       sync.Mutex
	n        int
	interval time.Duration
	start    time.Time
	count    int
}

// take counts one connection and returns how long the caller must pause
// before accepting again (0: go on).
func (r *rateLimiter) take(now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.start) >= r.interval {
		r.start, r.count = now, 0
	}
	r.count++
	if r.count >= r.n {
		return r.interval - now.Sub(r.start)
	}
	return 0
}
