// Package relay is the data path of acceptd's proxy mode: it copies the
// bytes of one accepted connection to its backend connection and back
// (the job of systemd-socket-proxyd and simpletcpunixrelay). It knows
// nothing of config or server: the server dials the backend and hands both
// conns to (*Relayer).Relay, which returns when the relay is over, or
// hands both raw sockets to the Engine (see below).
//
// # Design
//
// One Relayer serves the whole process; it owns a bounded pool of splice
// pipes (no package-level state). Each relay runs one goroutine per
// direction: the caller's goroutine copies client -> backend and one more
// goroutine copies backend -> client.
//
// For *net.TCPConn and *net.UnixConn (any mix) a direction moves bytes
// with splice(2), socket -> pipe -> socket, never through user space and
// with no wrapper conn in the data path; bytes are counted from splice's
// return values. The difference from io.Copy, which also splices, is what
// an idle direction costs: io.Copy holds its pipe (two fds and, at 1 MiB
// capacity, about 10 KiB of kernel pipe_buffer array) for the whole
// connection. Here a direction waits for readability first, inside
// syscall.RawConn.Read whose callback tries the splice and returns false
// on EAGAIN to park in the netpoller; only when data is there does it take
// a pipe from the pool, and it gives the pipe back as soon as the socket
// is drained. EAGAIN on the write side parks in RawConn.Write while the
// pipe keeps its bytes. So an idle relayed connection holds no pipe and
// two small parked goroutine stacks.
//
// The splice calls are raw system calls (RawSyscall6): the descriptors
// are non-blocking, so a call never sleeps, but a 256 KiB chunk takes
// longer than the runtime's 20 µs sysmon tick, and through entersyscall
// each such call let sysmon hand the P to another thread.
//
// Other net.Conn types (and sockets that cannot splice, or when no pipe
// can be created) fall back to a generic copy through a pooled buffer.
//
// # Ends
//
//   - EOF on one side: CloseWrite on the other side, so its peer sees EOF
//     and can still answer; the relay ends when both directions ended.
//   - A reset read from one side aborts the relay and resets the other
//     side (SO_LINGER 0 on TCP), so a broken stream is never forwarded as
//     a clean end. A failed write ends only its direction; the other one
//     forwards what the failed peer sent before it went away.
//   - ctx done or Options.IdleTimeout: both conns are closed at once.
//
// Both conns are always closed when Relay returns.
//
// # Engine
//
// Relay is for conns the net package made. The server's proxies use the
// Engine instead, except those that name their backend by host: raw
// non-blocking sockets from accept4 and a non-blocking connect, relayed by a few event loops of the Engine's own
// (one per two Ps), each an edge-triggered epoll set in which every
// socket is registered once. A relay is a Job (one allocation, its state
// inline), not two goroutines; the loop finishes a connect in progress
// (with a deadline heap for connect_timeout, which also holds each
// relay's idle_timeout deadline), splices with the same
// pooled pipes and the same discipline, and ends the relay with the same
// rules as below (a PROXY header for the backend is Job.Preamble, sent
// from the Job's own slice before the client's bytes); Job.Done is
// called by a reporter goroutine per loop, in batches handed over once per loop turn, so that a Done that blocks (a
// log write) does not stop the loop's other relays. When no pipe can be
// made (acceptd at RLIMIT_NOFILE), a direction copies through a 64 KiB
// buffer of its loop's until it is drained, and tries for a pipe again
// next time: fd exhaustion stops new connections, never a working one. A
// connect that fails hands the client back to the caller (Result.
// ConnectFailed), which may fill the Job in anew and add it again
// (connect_retry). Before adding a Job whose connect has completed, the
// caller passes the PROXY header and the client's first bytes (up to
// 4 KiB, peeked, sent, then read off) to the backend with Job.Forward,
// as haproxy does right after its connect: the backend finds them with
// its new connection rather than a loop turn later. A loop sleeps in
// epoll_wait only when it has nothing to do; after a turn that took new
// jobs it gives up its P for that sleep (entersyscallblock), so that
// under load sysmon does not take the P back from under it
// (epollWaitHandoff has the figures).
// Shutdown ends the Engine's relays with AbortAll, as ctx ends Relay's.
//
// Why: per short relayed connection Relay's goroutines, netpoller
// registrations and scheduler hand-offs cost more CPU than the relaying
// itself; bench/README.md has the figures.
//
// # Cost, measured
//
// go test -run XXX -bench IdleConnections -benchtime=1x ./server/relay
// holds 1,000 idle relayed connections (each moved a byte both ways):
// about 0.8 KiB heap and 4 KiB goroutine stack per connection (two
// goroutines parked at the 2 KiB minimum stack, the caller's included;
// plus about 0.4 KiB per goroutine struct, which Go reuses), no pipe held
// (the pool keeps a few for the next busy direction) and no measurable
// kernel slab beyond the sockets. The naive relay in the same run: 0.2 KiB
// heap, 7.7 KiB stack, 4 pipe fds and about 36 KiB of kernel slab (the
// buffer arrays of two 1 MiB pipes) per connection: 8.8x ours.
//
// One goroutine per connection would save one 2 KiB stack, but a
// goroutine can park on only one fd in the netpoller: waiting on both
// sockets needs an epoll fd per relay (an fd and about 1 KiB of kernel
// memory, registered in the netpoller) or a shared dispatcher goroutine
// that adds a hand-off to every wake-up. Neither pays for itself, so
// each direction has its own goroutine (which also lets the two directions
// of a busy connection run on two CPUs).
//
// BenchmarkRelayThroughput compares the relay with the naive relay,
// systemd-socket-proxyd (when installed) and a direct connection, 1 and 8
// upload streams, TCP->TCP and TCP->UNIX.
package relay
