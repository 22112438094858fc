package spawn

import (
	"net/netip"
	"strconv"
	"strings"
)

// DefaultPath is the PATH a child gets unless the service's environment
// sets one (systemd's default for system services).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Conn describes the connection a per-connection program serves.
type Conn struct {
	Proto                     string // "TCP" or "UNIX"
	RemoteIP, LocalIP         netip.Addr
	RemotePort, LocalPort     int
	RemotePath                string // UNIX: the peer's bound path, "" when unnamed
	PeerPID, PeerUID, PeerGID int    // UNIX: SO_PEERCRED; -1 when unknown
}

// ConnEnv appends the environment of one connection's program to dst and
// returns it (see CONTRACT "What a per-connection program gets"):
//
//   - PATH=[DefaultPath]
//   - REMOTE_ADDR, REMOTE_PORT as systemd sets them: for TCP the peer's IP
//     (an IPv4-mapped IPv6 address written as IPv4, no zone) and port; for
//     a UNIX peer REMOTE_ADDR is its path when it has one, and there is no
//     REMOTE_PORT
//   - PROTO, and the UCSPI names: TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP,
//     TCPLOCALPORT for TCP; UNIXREMOTEPID, UNIXREMOTEEUID, UNIXREMOTEEGID
//     for UNIX, each only when known (not -1)
//   - ACCEPTD_SERVICE=service, ACCEPTD_INSTANCE=instance
//
// The configured environment is appended by the caller after these and
// the result passed through [MergeEnv], so that it can override PATH.
//
// All values share one string allocation; with enough capacity in dst,
// ConnEnv allocates once.
func ConnEnv(dst []string, c *Conn, service, instance string) []string {
	var a [512]byte
	b := a[:0]
	var ends [12]int // where each entry ends in b
	n := 0
	mark := func() { ends[n] = len(b); n++ }

	switch c.Proto {
	case "UNIX":
		if c.RemotePath != "" {
			b = append(b, "REMOTE_ADDR="...)
			b = append(b, c.RemotePath...)
			mark()
		}
		b = append(b, "PROTO=UNIX"...)
		mark()
		for _, id := range [...]struct {
			name string
			v    int
		}{{"UNIXREMOTEPID=", c.PeerPID}, {"UNIXREMOTEEUID=", c.PeerUID}, {"UNIXREMOTEEGID=", c.PeerGID}} {
			if id.v >= 0 {
				b = append(b, id.name...)
				b = strconv.AppendInt(b, int64(id.v), 10)
				mark()
			}
		}
	default:
		remote, local := envIP(c.RemoteIP), envIP(c.LocalIP)
		b = append(b, "REMOTE_ADDR="...)
		b = remote.AppendTo(b)
		mark()
		b = append(b, "REMOTE_PORT="...)
		b = strconv.AppendInt(b, int64(c.RemotePort), 10)
		mark()
		b = append(b, "PROTO=TCP"...)
		mark()
		b = append(b, "TCPREMOTEIP="...)
		b = remote.AppendTo(b)
		mark()
		b = append(b, "TCPREMOTEPORT="...)
		b = strconv.AppendInt(b, int64(c.RemotePort), 10)
		mark()
		b = append(b, "TCPLOCALIP="...)
		b = local.AppendTo(b)
		mark()
		b = append(b, "TCPLOCALPORT="...)
		b = strconv.AppendInt(b, int64(c.LocalPort), 10)
		mark()
	}
	b = append(b, "ACCEPTD_SERVICE="...)
	b = append(b, service...)
	mark()
	b = append(b, "ACCEPTD_INSTANCE="...)
	b = append(b, instance...)
	mark()

	s := string(b) // the one allocation; every entry is a slice of it
	dst = append(dst, "PATH="+DefaultPath)
	start := 0
	for _, end := range ends[:n] {
		dst = append(dst, s[start:end])
		start = end
	}
	return dst
}

// envIP is ip as systemd and tcpserver print it: IPv4-mapped addresses as
// IPv4, and without a zone.
func envIP(ip netip.Addr) netip.Addr {
	return ip.Unmap().WithZone("")
}

// MergeEnv removes the earlier entries of every name that appears more than
// once in env, so that later entries (a service's configured environment)
// override earlier ones (from [ConnEnv]). A surviving entry keeps the
// position of the name's first appearance, so PATH stays first. It works in
// place and returns the shortened slice.
func MergeEnv(env []string) []string {
	if len(env) > 64 {
		return mergeEnvMap(env)
	}
	// A quadratic scan beats a map for the couple of dozen entries a
	// service has, and allocates nothing.
	out := env[:0]
next:
	for _, kv := range env {
		name := envName(kv)
		for i, seen := range out {
			if envName(seen) == name {
				out[i] = kv
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

func envName(kv string) string {
	if i := strings.IndexByte(kv, '='); i >= 0 {
		return kv[:i]
	}
	return kv
}

func mergeEnvMap(env []string) []string {
	at := make(map[string]int, len(env)) // name -> index in out
	out := env[:0]
	for _, kv := range env {
		name := envName(kv)
		if i, ok := at[name]; ok {
			out[i] = kv
			continue
		}
		at[name] = len(out)
		out = append(out, kv)
	}
	return out
}
