package config

import (
	"math"
	"os"

	"github.com/hashicorp/hcl/v2"
)

// defaultBacklog is the listen(2) backlog when none is given: what
// systemd's Backlog= defaults to (the kernel caps it at somaxconn).
const defaultBacklog = 4096

func (d *decoder) socket(fs *fileSocket) (Socket, hcl.Diagnostics) {
	s := Socket{Backlog: defaultBacklog, Owner: -1, Group: -1}
	if fs == nil {
		return s, nil
	}
	var diags hcl.Diagnostics
	var more hcl.Diagnostics
	s.Backlog, more = intIn(fs.Backlog, fs.BacklogRange, "backlog", defaultBacklog, 1, math.MaxInt32)
	diags = append(diags, more...)
	s.ReusePort = boolOr(fs.ReusePort, false)
	s.FreeBind = boolOr(fs.FreeBind, false)
	s.Transparent = boolOr(fs.Transparent, false)
	s.IPv6Only = boolOr(fs.IPv6Only, false)
	s.KeepAlive = boolOr(fs.KeepAlive, false)
	s.NoDelay = boolOr(fs.NoDelay, false)
	s.DeferAccept, more = duration(fs.DeferAccept, fs.DeferAcceptRange, "defer_accept", 0)
	diags = append(diags, more...)

	// mode, owner and group apply to socket files only and are ignored
	// for other listeners: the contract's own example sets them on a TCP
	// service, as a template for the UNIX case.
	if fs.Mode != nil {
		m, more := octalMode(*fs.Mode, fs.ModeRange, "mode", 0o777)
		diags = append(diags, more...)
		if more == nil {
			s.Mode = os.FileMode(m)
		}
	}
	if fs.Owner != nil {
		u, more := d.user(*fs.Owner, fs.OwnerRange, "owner")
		diags = append(diags, more...)
		if u != nil {
			s.Owner = int(u.UID)
			s.OwnerName = *fs.Owner
		}
	}
	if fs.Group != nil {
		g, more := d.group(*fs.Group, fs.GroupRange, "group")
		diags = append(diags, more...)
		if g != nil {
			s.Group = int(g.GID)
			s.GroupName = *fs.Group
		}
	}
	return s, diags
}
