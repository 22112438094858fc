package config

import (
	"os"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// DefaultPath is where `acceptd run` and `acceptd check` look when no
// -config flag is given (see CONTRACT: Command line).
const DefaultPath = "/etc/acceptd/acceptd.hcl"

// DefaultControlSocket is the control socket used when the file has no
// control block.
const DefaultControlSocket = "/run/acceptd/control.sock"

// Config is one validated configuration file. Every value has been checked
// and every default applied; the server consumes it as is.
type Config struct {
	// Path is the file the configuration was read from ("" when parsed
	// from memory under a synthetic name).
	Path string

	Log     Log
	Control Control
	// Metrics is nil when the file has no metrics block.
	Metrics *Metrics
	// ExitIdleTime > 0 makes acceptd exit after that long without a
	// connection.
	ExitIdleTime time.Duration
	// DynamicUsers is the UID/GID range for dynamic_user instances.
	DynamicUsers UIDRange

	// Services in the order they appear in the file.
	Services []*Service
}

// Log configures acceptd's own logging.
type Log struct {
	Level  string // debug | info | warn | error
	Format string // console | json
}

// Control configures the control socket.
type Control struct {
	Socket string
	Mode   os.FileMode
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Listen Address
}

// UIDRange is an inclusive range of UIDs (and equal GIDs).
type UIDRange struct {
	First, Last uint32
}

// Overflow says what a service does when max_connections is reached.
type Overflow string

const (
	// OverflowRefuse accepts the connection and closes it at once (counted
	// as refused).
	OverflowRefuse Overflow = "refuse"
	// OverflowWait stops accepting; clients wait in the listen backlog.
	OverflowWait Overflow = "wait"
)

// Mode names a service's kind; exactly one of Service.Exec, Proxy, Handoff
// and Builtin is set and Mode says which.
type Mode string

const (
	ModeExec    Mode = "exec"
	ModeProxy   Mode = "proxy"
	ModeHandoff Mode = "handoff"
	ModeBuiltin Mode = "builtin"
)

// Service is one `service "NAME" { ... }` block.
type Service struct {
	Name string
	// Range is the block's definition range ("service \"NAME\"") so that
	// later errors (a failed bind) can still point into the file.
	Range hcl.Range

	Listen []Listen

	// MaxConnections is the number of concurrent connections; 64 when not
	// set, as systemd's MaxConnections=.
	MaxConnections int
	Overflow       Overflow
	// MaxConnectionsPerSource is the per-client limit; 0 means unlimited.
	MaxConnectionsPerSource int
	SourcePrefixV4          int // default 32
	SourcePrefixV6          int // default 64
	Allow                   []Prefix
	Deny                    []Prefix

	// RateLimit is nil when the service has no rate_limit block.
	RateLimit *RateLimit

	AcceptProxyProtocol bool
	TrustedProxies      []Prefix

	Socket Socket

	Mode    Mode
	Exec    *Exec
	Proxy   *Proxy
	Handoff *Handoff
	Builtin string // echo | discard | daytime | chargen | time
}

// Listen is one listen address as written, with its place in the file.
type Listen struct {
	Address
	Range hcl.Range
}

// RateLimit allows at most Connections accepted per Interval.
type RateLimit struct {
	Connections int
	Interval    time.Duration
}

// Socket holds the options applied to every listener of a service. Zero
// values mean the kernel's (and inetd's) defaults.
type Socket struct {
	Backlog     int // 0: 4096
	ReusePort   bool
	FreeBind    bool
	Transparent bool
	IPv6Only    bool
	KeepAlive   bool
	NoDelay     bool
	// DeferAccept is systemd's DeferAcceptSec=: a TCP listener's
	// connections are accepted once the client has sent something, or
	// after about this long (TCP_DEFER_ACCEPT, in whole seconds); 0: off.
	DeferAccept time.Duration
	// Mode is the permission of UNIX socket files; 0 leaves the umask's.
	Mode os.FileMode
	// Owner and Group are the resolved ids of the socket file; -1 keeps
	// acceptd's own.
	Owner int
	Group int
	// OwnerName and GroupName are as written, for messages.
	OwnerName string
	GroupName string
}

// Stderr says where a child's standard error goes.
type Stderr string

const (
	StderrLog     Stderr = "log"
	StderrNull    Stderr = "null"
	StderrSocket  Stderr = "socket"
	StderrInherit Stderr = "inherit"
)

// Pass says how a program gets its socket: on stdin (and stdout), or also
// as fd 3 with LISTEN_FDS, as systemd passes sockets (see CONTRACT: What a
// per-connection program gets). With accept = false that socket is the
// listening one, and listen_fds passes every listener of the service.
type Pass string

const (
	PassStdin     Pass = "stdin"
	PassListenFDs Pass = "listen_fds"
)

// Exec is the `exec` block: a program per connection (Accept=true) or one
// program owning the listening socket (Accept=false).
type Exec struct {
	// Command is the program and its arguments; Command[0] is an absolute
	// path after validation (resolved against PATH at load time, so no
	// connection pays for a PATH search).
	Command          []string
	Accept           bool
	Pass             Pass
	IgnoreExitStatus bool
	Stderr           Stderr
	// User is nil when the service runs as acceptd's own user.
	User *UserSpec
	// Group is nil unless a group was given.
	Group            *GroupSpec
	DynamicUser      bool
	Environment      map[string]string
	WorkingDirectory string
	RuntimeMax       time.Duration
	StopTimeout      time.Duration // default 5s
	NoNewPrivileges  bool
	Umask            *os.FileMode
	Limits           []Rlimit

	// Chroot is the root directory of the child; "" keeps acceptd's.
	Chroot string
	// PrivateTmp gives the child a /tmp and /var/tmp of its own.
	PrivateTmp bool
	// PrivateNetwork runs the child in a network namespace with only a
	// loopback device (it keeps the connection it was given).
	PrivateNetwork bool
	// TasksMax limits the processes and threads of one instance; 0 means
	// no limit.
	TasksMax int
	// MemoryMax limits the memory of one instance in bytes; 0 means no
	// limit.
	MemoryMax uint64
}

// UserSpec is a resolved user.
type UserSpec struct {
	Name string // as written
	UID  uint32
	GID  uint32 // the user's primary group
	// Groups are the user's supplementary groups from the group database.
	Groups []uint32
	Home   string
}

// GroupSpec is a resolved group.
type GroupSpec struct {
	Name string
	GID  uint32
}

// Rlimit is one resource limit; Resource is a unix.RLIMIT_* value.
type Rlimit struct {
	Name     string
	Resource int
	Cur, Max uint64
}

// ProxyProtocol names the PROXY protocol version sent to a backend.
type ProxyProtocol string

// Proxy is the `proxy` block.
type Proxy struct {
	Backend        Address
	ConnectTimeout time.Duration // default 5s
	ConnectRetry   time.Duration
	IdleTimeout    time.Duration
	ProxyProtocol  ProxyProtocol // "" | "v1" | "v2"
	// Start is nil when acceptd does not start the backend itself.
	Start *ProxyStart
}

// ProxyStart starts the backend on the first connection.
type ProxyStart struct {
	Command      []string
	User         *UserSpec
	Group        *GroupSpec
	Environment  map[string]string
	StopWhenIdle time.Duration
	StopTimeout  time.Duration
}

// Handoff is the `handoff` block.
type Handoff struct {
	// Socket receives connections no route matches ("" refuses them).
	Socket string
	Routes []Route
}

// Route sends connections whose local address is in Local to Socket.
type Route struct {
	Local  Prefix
	Socket string
}
