package server

import (
	"context"
	"fmt"
	"net"

	"github.com/acceptd/acceptd/config"
	"github.com/acceptd/acceptd/server/activation"
)

// InheritedListen returns an Options.Listen that takes sockets passed by
// systemd (or any parent) before binding new ones: systemd:NAME by
// LISTEN_FDNAMES, fd:N by number, and any other address whose key matches
// an inherited socket (see CONTRACT: Addresses). Inherited sockets are
// never unlinked at shutdown: their owner made them.
func InheritedListen(set *activation.Set) func(context.Context, config.Address, config.Socket) (*Listener, error) {
	return func(ctx context.Context, a config.Address, opt config.Socket) (*Listener, error) {
		var sock *activation.Socket
		switch a.Kind {
		case config.KindSystemd:
			s, ok := set.ByName(a.Name)
			if !ok {
				return nil, fmt.Errorf("no inherited socket named %q (LISTEN_FDNAMES)", a.Name)
			}
			sock = s
		case config.KindFD:
			s, err := set.ByFD(a.FD)
			if err != nil {
				return nil, err
			}
			sock = s
		default:
			s, ok := set.ByKey(a.Key())
			if !ok {
				return listenSocket(ctx, a, opt)
			}
			sock = s
		}
		if !sock.Listening {
			return nil, fmt.Errorf("inherited fd %d (%s %s) is not a listening socket", sock.FD, sock.Network, sock.Addr)
		}
		if sock.Network != "tcp" && sock.Network != "unix" {
			return nil, fmt.Errorf("inherited fd %d is a %s socket; only stream sockets are supported here", sock.FD, sock.Network)
		}
		ln, err := net.FileListener(sock.File)
		if err != nil {
			return nil, fmt.Errorf("inherited fd %d: %w", sock.FD, err)
		}
		// FileListener made its own copy; ours is no longer needed, and
		// claiming keeps CloseUnclaimed off it.
		set.Claim(sock)
		sock.File.Close()
		if ul, ok := ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false)
		}
		return &Listener{key: a.Key(), addr: a, ln: ln, bound: ln.Addr().String(), inherited: true}, nil
	}
}
