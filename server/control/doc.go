// Package control is acceptd's local API: HTTP with JSON over a UNIX socket,
// the habit of docker and containerd (CONTRACT: control).
//
// The daemon side is [Listen] and [Server.Serve]; it answers
//
//	GET  /v1/status[?service=NAME...]  → server.Status
//	POST /v1/reload                    → server.ReloadResult
//
// and every error as {"error": "..."} with a 4xx or 5xx status. Who may ask
// is decided by the socket file's permission bits alone (0600 by default,
// so only the daemon's own user): there is no authentication on top.
//
// The client side is [Dial] and [Client], used by `acceptd status` and
// `acceptd reload`, and [Render] prints a Status the way `systemctl status`
// prints a socket unit.
package control
