package server

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"

	"github.com/acceptd/acceptd/config"
	"github.com/acceptd/acceptd/server/handoff"
)

// handoffHandler passes each accepted socket itself to another daemon
// (socketbox): chosen by the local address the client connected to, or
// the default socket when no route matches.
type handoffHandler struct {
	h      *config.Handoff
	sender *handoff.Sender
}

var errNoRoute = errors.New("no handoff route for this local address and no default socket")

// target picks the receiving socket for a connection to local.
func (h *handoffHandler) target(local netip.Addr) string {
	local = local.Unmap()
	for _, r := range h.h.Routes {
		if local.IsValid() && r.Local.Contains(local) {
			return r.Socket
		}
	}
	return h.h.Socket
}

func (h *handoffHandler) Handle(ctx context.Context, c *Conn, in *instance) outcome {
	defer c.Close()
	var local netip.Addr
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
		local = ta.AddrPort().Addr()
	}
	path := h.target(local)
	if path == "" {
		return outcome{refused: refusedHandoff, err: errNoRoute}
	}
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return outcome{refused: refusedHandoff, err: errors.New("connection has no descriptor")}
	}
	if err := h.sender.SendConn(path, sc); err != nil {
		return outcome{refused: refusedHandoff, err: err}
	}
	return outcome{}
}
