// Package handoff passes accepted connections between processes over a
// UNIX datagram socket with SCM_RIGHTS, the way socketbox does: the
// receiving process may live in another network namespace, a container
// or under another user, and it gets the original socket, not a relay.
//
// The wire format is one datagram per connection: a one-byte version tag
// ('1') and one descriptor in an SCM_RIGHTS control message. Datagrams
// keep every hand-over separate without any framing, and a sender never
// blocks on a slow receiver: a full receive queue is an error the sender
// reports (and acceptd counts as a refusal).
//
// Anything that uses [Listen] can receive; acceptd's `handoff:/path` listen
// address is exactly that.
package handoff
