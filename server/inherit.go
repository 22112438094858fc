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
//
// systemd:NAME takes every socket of that name: systemd names all the
// sockets of a socket unit after the unit unless told otherwise, so a unit
// with two ListenStream= lines passes two sockets under one name.
func InheritedListen(set *activation.Set) func(context.Context, config.Address, config.Socket) ([]*Listener, error) {
	return func(ctx context.Context, a config.Address, opt config.Socket) ([]*Listener, error) {
		var socks []*activation.Socket
		switch a.Kind {
		case config.KindSystemd:
			socks = set.Named(a.Name)
			if len(socks) == 0 {
				return nil, fmt.Errorf("no inherited socket named %q (LISTEN_FDNAMES)", a.Name)
			}
		case config.KindFD:
			s, err := set.ByFD(a.FD)
			if err != nil {
				return nil, err
			}
			socks = append(socks, s)
		default:
			s, ok := set.ByKey(a.Key())
			if !ok {
				l, err := listenSocket(ctx, a, opt)
				if err != nil {
					return nil, err
				}
				return []*Listener{l}, nil
			}
			socks = append(socks, s)
		}
		var out []*Listener
		for _, sock := range socks {
			l, err := adopt(set, a, sock)
			if err != nil {
				for _, l := range out {
					l.close()
				}
				return nil, err
			}
			out = append(out, l)
		}
		return out, nil
	}
}

// adopt turns one inherited socket into a listener for address a.
func adopt(set *activation.Set, a config.Address, sock *activation.Socket) (*Listener, error) {
	l := &Listener{key: a.Key(), addr: a, inherited: true}
	switch sock.Network {
	case "tcp", "unix":
		if !sock.Listening {
			return nil, fmt.Errorf("inherited fd %d (%s %s) is not a listening socket", sock.FD, sock.Network, sock.Addr)
		}
		ln, err := net.FileListener(sock.File)
		if err != nil {
			return nil, fmt.Errorf("inherited fd %d: %w", sock.FD, err)
		}
		if ul, ok := ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false)
		}
		l.ln, l.bound = ln, ln.Addr().String()
	case "udp":
		// Datagram sockets serve wait-mode programs and builtins.
		pc, err := net.FilePacketConn(sock.File)
		if err != nil {
			return nil, fmt.Errorf("inherited fd %d: %w", sock.FD, err)
		}
		l.pc, l.bound = pc, "udp://"+pc.LocalAddr().String()
	default:
		return nil, fmt.Errorf("inherited fd %d is a %s socket; acceptd serves TCP, UNIX stream and UDP sockets", sock.FD, sock.Network)
	}
	// The net package made its own copy; ours is no longer needed, and
	// claiming keeps CloseUnclaimed off it.
	set.Claim(sock)
	sock.File.Close()
	return l, nil
}
