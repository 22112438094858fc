package config

import "github.com/hashicorp/hcl/v2"

// The file structs mirror the HCL as the user writes it. gohcl fills them
// and reports unknown arguments and blocks, missing required arguments,
// duplicate singleton blocks and type mismatches, each with its range. The
// decodeX functions then turn them into the model, applying defaults and
// checking values. Optional values are pointers so that "absent" (take the
// default) differs from the zero value written out; every such value keeps
// the range of its expression so that a bad value is reported where it is
// written.

type fileRoot struct {
	Log          *fileLog          `hcl:"log,block"`
	Control      *fileControl      `hcl:"control,block"`
	Metrics      *fileMetrics      `hcl:"metrics,block"`
	DynamicUsers *fileDynamicUsers `hcl:"dynamic_users,block"`

	ExitIdleTime      *string   `hcl:"exit_idle_time,optional"`
	ExitIdleTimeRange hcl.Range `hcl:"exit_idle_time,attr_value_range"`

	Services []*fileService `hcl:"service,block"`
}

type fileLog struct {
	Level       *string   `hcl:"level,optional"`
	LevelRange  hcl.Range `hcl:"level,attr_value_range"`
	Format      *string   `hcl:"format,optional"`
	FormatRange hcl.Range `hcl:"format,attr_value_range"`
	DefRange    hcl.Range `hcl:",def_range"`
}

type fileControl struct {
	Socket      *string   `hcl:"socket,optional"`
	SocketRange hcl.Range `hcl:"socket,attr_value_range"`
	Mode        *string   `hcl:"mode,optional"`
	ModeRange   hcl.Range `hcl:"mode,attr_value_range"`
	DefRange    hcl.Range `hcl:",def_range"`
}

type fileMetrics struct {
	Listen      string    `hcl:"listen"`
	ListenRange hcl.Range `hcl:"listen,attr_value_range"`
	DefRange    hcl.Range `hcl:",def_range"`
}

type fileDynamicUsers struct {
	Range      string    `hcl:"range"`
	RangeRange hcl.Range `hcl:"range,attr_value_range"`
	DefRange   hcl.Range `hcl:",def_range"`
}

// fileService is one `service "NAME" { ... }` block as written.
type fileService struct {
	Name      string    `hcl:"name,label"`
	NameRange hcl.Range `hcl:"name,label_range"`
	DefRange  hcl.Range `hcl:",def_range"`

	// Listen, Allow, Deny and TrustedProxies are expressions so that
	// hcl.ExprList gives one range per element.
	Listen         hcl.Expression `hcl:"listen,optional"`
	Allow          hcl.Expression `hcl:"allow,optional"`
	Deny           hcl.Expression `hcl:"deny,optional"`
	TrustedProxies hcl.Expression `hcl:"trusted_proxies,optional"`

	MaxConnections               *int      `hcl:"max_connections,optional"`
	MaxConnectionsRange          hcl.Range `hcl:"max_connections,attr_value_range"`
	Overflow                     *string   `hcl:"overflow,optional"`
	OverflowRange                hcl.Range `hcl:"overflow,attr_value_range"`
	MaxConnectionsPerSource      *int      `hcl:"max_connections_per_source,optional"`
	MaxConnectionsPerSourceRange hcl.Range `hcl:"max_connections_per_source,attr_value_range"`
	SourcePrefixV4               *int      `hcl:"source_prefix_v4,optional"`
	SourcePrefixV4Range          hcl.Range `hcl:"source_prefix_v4,attr_value_range"`
	SourcePrefixV6               *int      `hcl:"source_prefix_v6,optional"`
	SourcePrefixV6Range          hcl.Range `hcl:"source_prefix_v6,attr_value_range"`
	AcceptProxyProtocol          *bool     `hcl:"accept_proxy_protocol,optional"`
	AcceptProxyProtocolRange     hcl.Range `hcl:"accept_proxy_protocol,attr_value_range"`

	RateLimit *fileRateLimit `hcl:"rate_limit,block"`
	Socket    *fileSocket    `hcl:"socket,block"`

	// The mode blocks are slices so that a duplicate is still seen (gohcl
	// drops a duplicated singleton block altogether, which would add a
	// wrong "missing mode" to the right "duplicate block").
	Exec         []*fileExec    `hcl:"exec,block"`
	Proxy        []*fileProxy   `hcl:"proxy,block"`
	Handoff      []*fileHandoff `hcl:"handoff,block"`
	Builtin      *string        `hcl:"builtin,optional"`
	BuiltinRange hcl.Range      `hcl:"builtin,attr_range"`
}

type fileRateLimit struct {
	Connections      int       `hcl:"connections"`
	ConnectionsRange hcl.Range `hcl:"connections,attr_value_range"`
	Interval         string    `hcl:"interval"`
	IntervalRange    hcl.Range `hcl:"interval,attr_value_range"`
	DefRange         hcl.Range `hcl:",def_range"`
}

type fileSocket struct {
	Backlog          *int      `hcl:"backlog,optional"`
	BacklogRange     hcl.Range `hcl:"backlog,attr_value_range"`
	ReusePort        *bool     `hcl:"reuse_port,optional"`
	FreeBind         *bool     `hcl:"free_bind,optional"`
	Transparent      *bool     `hcl:"transparent,optional"`
	IPv6Only         *bool     `hcl:"ipv6_only,optional"`
	IPv6OnlyRange    hcl.Range `hcl:"ipv6_only,attr_value_range"`
	KeepAlive        *bool     `hcl:"keepalive,optional"`
	NoDelay          *bool     `hcl:"no_delay,optional"`
	DeferAccept      *string   `hcl:"defer_accept,optional"`
	DeferAcceptRange hcl.Range `hcl:"defer_accept,attr_value_range"`
	Mode             *string   `hcl:"mode,optional"`
	ModeRange        hcl.Range `hcl:"mode,attr_value_range"`
	Owner            *string   `hcl:"owner,optional"`
	OwnerRange       hcl.Range `hcl:"owner,attr_value_range"`
	Group            *string   `hcl:"group,optional"`
	GroupRange       hcl.Range `hcl:"group,attr_value_range"`
	DefRange         hcl.Range `hcl:",def_range"`
	TransparentRange hcl.Range `hcl:"transparent,attr_value_range"`
}

type fileExec struct {
	Command               hcl.Expression    `hcl:"command"`
	Accept                *bool             `hcl:"accept,optional"`
	AcceptRange           hcl.Range         `hcl:"accept,attr_value_range"`
	Pass                  *string           `hcl:"pass,optional"`
	PassRange             hcl.Range         `hcl:"pass,attr_value_range"`
	IgnoreExitStatus      *bool             `hcl:"ignore_exit_status,optional"`
	Stderr                *string           `hcl:"stderr,optional"`
	StderrRange           hcl.Range         `hcl:"stderr,attr_value_range"`
	User                  *string           `hcl:"user,optional"`
	UserRange             hcl.Range         `hcl:"user,attr_value_range"`
	Group                 *string           `hcl:"group,optional"`
	GroupRange            hcl.Range         `hcl:"group,attr_value_range"`
	DynamicUser           *bool             `hcl:"dynamic_user,optional"`
	DynamicUserRange      hcl.Range         `hcl:"dynamic_user,attr_value_range"`
	Environment           map[string]string `hcl:"environment,optional"`
	EnvironmentRange      hcl.Range         `hcl:"environment,attr_value_range"`
	WorkingDirectory      *string           `hcl:"working_directory,optional"`
	WorkingDirectoryRange hcl.Range         `hcl:"working_directory,attr_value_range"`
	RuntimeMax            *string           `hcl:"runtime_max,optional"`
	RuntimeMaxRange       hcl.Range         `hcl:"runtime_max,attr_value_range"`
	StopTimeout           *string           `hcl:"stop_timeout,optional"`
	StopTimeoutRange      hcl.Range         `hcl:"stop_timeout,attr_value_range"`
	NoNewPrivileges       *bool             `hcl:"no_new_privileges,optional"`
	NoNewPrivilegesRange  hcl.Range         `hcl:"no_new_privileges,attr_value_range"`
	Umask                 *string           `hcl:"umask,optional"`
	UmaskRange            hcl.Range         `hcl:"umask,attr_value_range"`
	Chroot                *string           `hcl:"chroot,optional"`
	ChrootRange           hcl.Range         `hcl:"chroot,attr_value_range"`
	PrivateTmp            *bool             `hcl:"private_tmp,optional"`
	PrivateNetwork        *bool             `hcl:"private_network,optional"`
	TasksMax              *int              `hcl:"tasks_max,optional"`
	TasksMaxRange         hcl.Range         `hcl:"tasks_max,attr_value_range"`
	MemoryMax             *string           `hcl:"memory_max,optional"`
	MemoryMaxRange        hcl.Range         `hcl:"memory_max,attr_value_range"`
	Limits                *fileLimits       `hcl:"limits,block"`
	DefRange              hcl.Range         `hcl:",def_range"`
}

// fileLimits keeps its body: each limit's value may be a number or a
// string, and the names are checked against one table in limits.go.
type fileLimits struct {
	Body     hcl.Body  `hcl:",remain"`
	DefRange hcl.Range `hcl:",def_range"`
}

type fileProxy struct {
	Backend             string     `hcl:"backend"`
	BackendRange        hcl.Range  `hcl:"backend,attr_value_range"`
	ConnectTimeout      *string    `hcl:"connect_timeout,optional"`
	ConnectTimeoutRange hcl.Range  `hcl:"connect_timeout,attr_value_range"`
	ConnectRetry        *string    `hcl:"connect_retry,optional"`
	ConnectRetryRange   hcl.Range  `hcl:"connect_retry,attr_value_range"`
	IdleTimeout         *string    `hcl:"idle_timeout,optional"`
	IdleTimeoutRange    hcl.Range  `hcl:"idle_timeout,attr_value_range"`
	ProxyProtocol       *string    `hcl:"proxy_protocol,optional"`
	ProxyProtocolRange  hcl.Range  `hcl:"proxy_protocol,attr_value_range"`
	Start               *fileStart `hcl:"start,block"`
	DefRange            hcl.Range  `hcl:",def_range"`
}

type fileStart struct {
	Command           hcl.Expression    `hcl:"command"`
	User              *string           `hcl:"user,optional"`
	UserRange         hcl.Range         `hcl:"user,attr_value_range"`
	Group             *string           `hcl:"group,optional"`
	GroupRange        hcl.Range         `hcl:"group,attr_value_range"`
	Environment       map[string]string `hcl:"environment,optional"`
	EnvironmentRange  hcl.Range         `hcl:"environment,attr_value_range"`
	StopWhenIdle      *string           `hcl:"stop_when_idle,optional"`
	StopWhenIdleRange hcl.Range         `hcl:"stop_when_idle,attr_value_range"`
	StopTimeout       *string           `hcl:"stop_timeout,optional"`
	StopTimeoutRange  hcl.Range         `hcl:"stop_timeout,attr_value_range"`
	DefRange          hcl.Range         `hcl:",def_range"`
}

type fileHandoff struct {
	Socket      *string     `hcl:"socket,optional"`
	SocketRange hcl.Range   `hcl:"socket,attr_value_range"`
	Routes      []fileRoute `hcl:"route,block"`
	DefRange    hcl.Range   `hcl:",def_range"`
}

type fileRoute struct {
	Local       string    `hcl:"local"`
	LocalRange  hcl.Range `hcl:"local,attr_value_range"`
	Socket      string    `hcl:"socket"`
	SocketRange hcl.Range `hcl:"socket,attr_value_range"`
	DefRange    hcl.Range `hcl:",def_range"`
}
