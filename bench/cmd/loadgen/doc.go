// Command loadgen is the load generator and backend of the scripts in
// bench/: it drives per-connection servers and relays on loopback and
// prints one line of results per run, so that bench/spawn and bench/relay
// can put acceptd and its peers side by side.
//
// Subcommands:
//
//	loadgen conn    -addr A -n N -c C [-send B -expect B] [-max DUR]
//	loadgen bulk    -addr A -streams S -secs D -dir up|down
//	loadgen hold    -addr A -n N [-max DUR]
//	loadgen backend -listen A [-listen B ...]
//
// Addresses are HOST:PORT for TCP or unix:PATH for a UNIX socket. The
// backend reads one command byte per connection: 'e' echoes everything
// (the command byte included), 'u' discards until EOF and answers with the
// byte count (8 bytes, big endian), 'd' sends until the client goes away.
// A PROXY v1 or v2 header before the command byte (a relay with
// proxy_protocol) is skipped.
package main
