// Package activation takes the listening sockets that systemd (or any
// parent speaking the same protocol) hands to acceptd: the LISTEN_PID,
// LISTEN_FDS and LISTEN_FDNAMES variables of sd_listen_fds(3), and plain
// already-open sockets named as fd:N.
//
// [FromEnv] reads and removes the variables, checks every descriptor, and
// describes each socket by what the kernel says about it (family, type,
// bound address), never by what the environment claims. A [Socket]'s Key
// has the form of config.Address.Key, so a listen address written in the
// configuration finds the inherited socket bound to the same address.
//
// Ownership: the [Set] owns every inherited descriptor until a caller
// [Set.Claim]s it; from then on the caller owns the Socket's File and
// closes it. [Set.CloseUnclaimed] closes the rest, so sockets that no
// service asked for do not stay open (or reach a child).
//
// The package is not a listener factory: it binds nothing, and it does not
// turn sockets into net.Listener values; the server does that.
package activation
