package config

import (
	"flag"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

var update = flag.Bool("update", false, "rewrite testdata/invalid/*.diags from the current output")

// TestInvalid loads every testdata/invalid/*.hcl and compares the sorted
// diagnostics, as `acceptd check` prints them, with the golden *.diags.
func TestInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 45 {
		t.Fatalf("only %d invalid configurations; want at least 45", len(files))
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".hcl")
		t.Run(name, func(t *testing.T) {
			cfg, diags := Load(path, fakeLookup{})
			if !diags.HasErrors() {
				t.Fatalf("Load(%s) reported no error", path)
			}
			if cfg != nil {
				t.Errorf("Load(%s) returned a Config along with errors", path)
			}
			for _, d := range diags {
				if d.Subject == nil || d.Subject.Filename != path || d.Subject.Start.Line < 1 {
					t.Errorf("diagnostic without a place in %s: %s", path, FormatDiagnostic(d))
				}
			}
			got := strings.Join(Errors(diags), "\n") + "\n"
			golden := strings.TrimSuffix(path, ".hcl") + ".diags"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics of %s differ from %s\ngot:\n%s\nwant:\n%s", path, golden, got, want)
			}
		})
	}
}

func TestLoadContract(t *testing.T) {
	cfg, diags := Load("testdata/valid/contract.hcl", fakeLookup{})
	for _, e := range Errors(diags) {
		t.Error(e)
	}
	if cfg == nil {
		t.Fatal("Load returned no Config")
	}
	if cfg.Path != "testdata/valid/contract.hcl" {
		t.Errorf("Path = %q", cfg.Path)
	}
	if cfg.Log != (Log{Level: "info", Format: "console"}) {
		t.Errorf("Log = %+v", cfg.Log)
	}
	if cfg.Control != (Control{Socket: "/run/acceptd/control.sock", Mode: 0o600}) {
		t.Errorf("Control = %+v", cfg.Control)
	}
	if cfg.Metrics == nil || cfg.Metrics.Listen.String() != "127.0.0.1:9464" {
		t.Errorf("Metrics = %+v", cfg.Metrics)
	}
	if cfg.DynamicUsers != (UIDRange{First: 61184, Last: 65519}) {
		t.Errorf("DynamicUsers = %+v", cfg.DynamicUsers)
	}
	var names []string
	byName := map[string]*Service{}
	for _, s := range cfg.Services {
		names = append(names, s.Name)
		byName[s.Name] = s
	}
	if want := []string{"hello", "nginx", "tftp", "containers", "ssh-in-container", "echo"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("services = %q; want %q", names, want)
	}

	hello := byName["hello"]
	if hello.Mode != ModeExec || hello.Exec == nil {
		t.Fatalf("hello: mode %q, exec %v", hello.Mode, hello.Exec)
	}
	if hello.Range.Start.Line != 17 {
		t.Errorf("hello.Range = %v; want line 17", hello.Range)
	}
	if len(hello.Listen) != 1 || hello.Listen[0].Key() != "tcp [::]:31337" || hello.Listen[0].Range.Start.Line != 18 {
		t.Errorf("hello.Listen = %+v", hello.Listen)
	}
	if hello.MaxConnections != 64 || hello.Overflow != OverflowRefuse || hello.MaxConnectionsPerSource != 0 ||
		hello.SourcePrefixV4 != 32 || hello.SourcePrefixV6 != 64 {
		t.Errorf("hello limits = %d %q %d /%d /%d", hello.MaxConnections, hello.Overflow,
			hello.MaxConnectionsPerSource, hello.SourcePrefixV4, hello.SourcePrefixV6)
	}
	if len(hello.Allow) != 2 || hello.Allow[0].String() != "127.0.0.0/8" || hello.Allow[1].String() != "::1/128" || len(hello.Deny) != 0 {
		t.Errorf("allow %v deny %v", hello.Allow, hello.Deny)
	}
	if hello.RateLimit == nil || *hello.RateLimit != (RateLimit{Connections: 200, Interval: 2 * time.Second}) {
		t.Errorf("RateLimit = %+v", hello.RateLimit)
	}
	wantSocket := Socket{Backlog: 4096, Mode: 0o660, Owner: 1002, Group: 1002, OwnerName: "foobar", GroupName: "foobar"}
	if hello.Socket != wantSocket {
		t.Errorf("Socket = %+v; want %+v", hello.Socket, wantSocket)
	}
	e := hello.Exec
	wantExec := &Exec{
		Command:          []string{"/opt/octoi-helloworld.sh"},
		Accept:           true,
		Pass:             PassStdin,
		IgnoreExitStatus: true,
		Stderr:           StderrNull,
		User:             &UserSpec{Name: "helloworld", UID: 1001, GID: 1001, Groups: []uint32{1001}, Home: "/home/helloworld"},
		Group:            &GroupSpec{Name: "helloworld", GID: 1001},
		Environment:      map[string]string{"GREETING": "hi"},
		WorkingDirectory: "/",
		StopTimeout:      5 * time.Second,
		Limits:           []Rlimit{{Name: "nofile", Resource: rlimits["nofile"].resource, Cur: 1024, Max: 1024}},
	}
	if !reflect.DeepEqual(e, wantExec) {
		t.Errorf("hello.Exec = %+v\nwant %+v", e, wantExec)
	}

	nginx := byName["nginx"]
	if nginx.Mode != ModeProxy || nginx.Proxy == nil || nginx.MaxConnections != 256 {
		t.Fatalf("nginx = %+v", nginx)
	}
	p := nginx.Proxy
	if p.Backend.Kind != KindUnix || p.Backend.Path != "/run/nginx/socket" || p.ConnectTimeout != 5*time.Second ||
		p.ConnectRetry != 0 || p.IdleTimeout != 0 || p.ProxyProtocol != "" {
		t.Errorf("nginx.Proxy = %+v", p)
	}
	wantStart := &ProxyStart{
		Command:      []string{"/usr/sbin/nginx", "-g", "daemon off;"},
		User:         &UserSpec{Name: "www-data", UID: 33, GID: 33, Groups: []uint32{33}, Home: "/var/www"},
		StopWhenIdle: 10 * time.Minute,
		StopTimeout:  5 * time.Second,
	}
	if !reflect.DeepEqual(p.Start, wantStart) {
		t.Errorf("nginx.Proxy.Start = %+v; want %+v", p.Start, wantStart)
	}

	tftp := byName["tftp"]
	if tftp.Listen[0].Kind != KindUDP || tftp.Exec == nil || tftp.Exec.Accept || tftp.Exec.Pass != PassStdin {
		t.Errorf("tftp = %+v exec %+v", tftp, tftp.Exec)
	}

	c := byName["containers"]
	if c.Mode != ModeHandoff || c.Handoff == nil || c.Handoff.Socket != "/run/containers/default/accept.sock" ||
		len(c.Handoff.Routes) != 2 || c.Handoff.Routes[1].Local.String() != "2001:db8::2/128" ||
		c.Handoff.Routes[1].Socket != "/run/containers/two/accept.sock" {
		t.Errorf("containers.Handoff = %+v", c.Handoff)
	}
	if in := byName["ssh-in-container"]; in.Listen[0].Kind != KindHandoff || in.Exec.Command[0] != "/usr/sbin/sshd" {
		t.Errorf("ssh-in-container = %+v", in)
	}
	if echo := byName["echo"]; echo.Mode != ModeBuiltin || echo.Builtin != "echo" {
		t.Errorf("echo = %+v", echo)
	}
}

// TestParseValues covers the values the contract example leaves at their
// defaults or does not show.
func TestParseValues(t *testing.T) {
	src := `
log {
  level  = "debug"
  format = "json"
}
control {
  socket = "@acceptd-control"
  mode   = "0660"
}
exit_idle_time = "90s"
dynamic_users { range = "70000-70009" }

service "all" {
  listen = [31337, "/run/all.sock"]
  overflow = "wait"
  max_connections_per_source = 4
  source_prefix_v4 = 24
  source_prefix_v6 = 56
  deny = ["10.0.0.0/8"]
  accept_proxy_protocol = true
  trusted_proxies = ["192.0.2.1"]
  socket {
    backlog = 16
    reuse_port = true
    free_bind = true
    transparent = true
    ipv6_only = true
    keepalive = true
    no_delay = true
    owner = 1234
    group = "sudo"
  }
  exec {
    command = ["cat", "-u"]
    accept = false
    pass = "listen_fds"
    stderr = "inherit"
    dynamic_user = true
    runtime_max = "1h"
    stop_timeout = "250ms"
    umask = "0027"
    chroot = "/srv/chroot/"
    private_tmp = true
    private_network = true
    tasks_max = 10
    memory_max = "512M"
    limits {
      nofile = "1024:4096"
      as = "1G"
      core = 0
      cpu = "infinity"
      nice = 30
    }
  }
}

service "relay" {
  listen = ["tcp6://[::1]:8443"]
  proxy {
    backend = "tcp4://127.0.0.1:443"
    connect_timeout = "1s"
    connect_retry = "30s"
    idle_timeout = "5m"
    proxy_protocol = "v2"
    start {
      command = ["true"]
      group = "foobar"
      environment = { A = "1" }
      stop_timeout = "2s"
    }
  }
}

service "h" {
  listen = ["handoff:@in"]
  handoff {
    route {
      local = "192.0.2.0/24"
      socket = "@out"
    }
  }
}
`
	cfg, diags := Parse("values.hcl", []byte(src), fakeLookup{})
	for _, e := range Errors(diags) {
		t.Error(e)
	}
	if cfg == nil {
		t.FailNow()
	}
	if cfg.Log != (Log{"debug", "json"}) || cfg.Control != (Control{"@acceptd-control", 0o660}) ||
		cfg.ExitIdleTime != 90*time.Second || cfg.DynamicUsers != (UIDRange{70000, 70009}) || cfg.Metrics != nil {
		t.Errorf("globals = %+v %+v %v %+v %v", cfg.Log, cfg.Control, cfg.ExitIdleTime, cfg.DynamicUsers, cfg.Metrics)
	}
	all := cfg.Services[0]
	if all.Listen[0].Key() != "tcp [::]:31337" || all.Listen[1].Path != "/run/all.sock" {
		t.Errorf("listen = %+v", all.Listen)
	}
	if all.Overflow != OverflowWait || all.MaxConnectionsPerSource != 4 || all.SourcePrefixV4 != 24 ||
		all.SourcePrefixV6 != 56 || len(all.Allow) != 0 || len(all.Deny) != 1 || !all.AcceptProxyProtocol ||
		len(all.TrustedProxies) != 1 || all.TrustedProxies[0].String() != "192.0.2.1/32" {
		t.Errorf("all = %+v", all)
	}
	wantSocket := Socket{Backlog: 16, ReusePort: true, FreeBind: true, Transparent: true, IPv6Only: true,
		KeepAlive: true, NoDelay: true, Owner: 1234, Group: 27, OwnerName: "1234", GroupName: "sudo"}
	if all.Socket != wantSocket {
		t.Errorf("Socket = %+v; want %+v", all.Socket, wantSocket)
	}
	umask := os.FileMode(0o027)
	wantExec := &Exec{
		Command: []string{"/bin/cat", "-u"}, Pass: PassListenFDs, Stderr: StderrInherit,
		DynamicUser: true, NoNewPrivileges: true, RuntimeMax: time.Hour, StopTimeout: 250 * time.Millisecond,
		Umask: &umask, Chroot: "/srv/chroot", PrivateTmp: true, PrivateNetwork: true, TasksMax: 10, MemoryMax: 512 << 20,
		Limits: []Rlimit{
			{Name: "nofile", Resource: rlimits["nofile"].resource, Cur: 1024, Max: 4096},
			{Name: "as", Resource: rlimits["as"].resource, Cur: 1 << 30, Max: 1 << 30},
			{Name: "core", Resource: rlimits["core"].resource},
			{Name: "cpu", Resource: rlimits["cpu"].resource, Cur: rlimitInfinity, Max: rlimitInfinity},
			{Name: "nice", Resource: rlimits["nice"].resource, Cur: 30, Max: 30},
		},
	}
	if !reflect.DeepEqual(all.Exec, wantExec) {
		t.Errorf("Exec = %+v\nwant %+v", all.Exec, wantExec)
	}
	relay := cfg.Services[1].Proxy
	if relay.Backend.Network != "tcp4" || relay.ConnectTimeout != time.Second || relay.ConnectRetry != 30*time.Second ||
		relay.IdleTimeout != 5*time.Minute || relay.ProxyProtocol != "v2" {
		t.Errorf("relay = %+v", relay)
	}
	wantStart := &ProxyStart{Command: []string{"/bin/true"}, Group: &GroupSpec{"foobar", 1002},
		Environment: map[string]string{"A": "1"}, StopTimeout: 2 * time.Second}
	if !reflect.DeepEqual(relay.Start, wantStart) {
		t.Errorf("Start = %+v; want %+v", relay.Start, wantStart)
	}
	h := cfg.Services[2].Handoff
	if h.Socket != "" || len(h.Routes) != 1 || h.Routes[0].Socket != "@out" {
		t.Errorf("handoff = %+v", h)
	}
}

// TestNilLookup: without a Lookup, names are not checked and numbers are
// taken as IDs.
func TestNilLookup(t *testing.T) {
	src := `
service "s" {
  listen = ["31337"]
  exec {
    command = ["/bin/sh"]
    user    = "nosuchuser"
    group   = "1234"
  }
}`
	cfg, diags := Parse("nil.hcl", []byte(src), nil)
	if diags.HasErrors() {
		t.Fatal(Errors(diags))
	}
	e := cfg.Services[0].Exec
	if !reflect.DeepEqual(*e.User, UserSpec{Name: "nosuchuser"}) || *e.Group != (GroupSpec{Name: "1234", GID: 1234}) {
		t.Errorf("user %+v group %+v", e.User, e.Group)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.hcl")
	cfg, diags := Load(path, nil)
	if cfg != nil || len(diags) != 1 {
		t.Fatalf("Load = %v, %v", cfg, diags)
	}
	got := FormatDiagnostic(diags[0])
	if want := path + ": Cannot read configuration: open " + path + ": no such file or directory"; got != want {
		t.Errorf("FormatDiagnostic = %q; want %q", got, want)
	}
}

func TestFormatAndSort(t *testing.T) {
	r := func(file string, line, col int) *hcl.Range {
		return &hcl.Range{Filename: file, Start: hcl.Pos{Line: line, Column: col}}
	}
	diags := hcl.Diagnostics{
		{Severity: hcl.DiagError, Summary: "b", Subject: r("b.hcl", 1, 1)},
		{Severity: hcl.DiagError, Summary: "z", Detail: "later", Subject: r("a.hcl", 10, 2)},
		{Severity: hcl.DiagWarning, Summary: "warn", Subject: r("a.hcl", 1, 1)},
		{Severity: hcl.DiagError, Summary: "y", Detail: "second", Subject: r("a.hcl", 2, 5)},
		{Severity: hcl.DiagError, Summary: "x", Detail: "first", Subject: r("a.hcl", 2, 5)},
		{Severity: hcl.DiagError, Summary: "col", Subject: r("a.hcl", 2, 3)},
		{Severity: hcl.DiagError, Summary: "nowhere"},
	}
	got := Errors(diags)
	want := []string{
		"nowhere",
		"a.hcl:2,3: col",
		"a.hcl:2,5: x: first",
		"a.hcl:2,5: y: second",
		"a.hcl:10,2: z: later",
		"b.hcl:1,1: b",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Errors = %q\nwant %q", got, want)
	}
	if diags[0].Summary != "b" {
		t.Error("Errors reordered its argument")
	}
	SortDiagnostics(diags)
	if diags[1].Summary != "warn" {
		t.Errorf("SortDiagnostics: second is %q; want warn", diags[1].Summary)
	}
}

// TestExamples loads every example of the repository with the host's own
// user database, so that the examples never rot. Examples that name users
// this host does not have are skipped, not failed.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skip("no examples yet")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, diags := Load(path, OSLookup())
			for _, d := range diags {
				if d.Summary == "Unknown user" || d.Summary == "Unknown group" {
					t.Skipf("this host lacks what the example needs: %s", FormatDiagnostic(d))
				}
			}
			for _, e := range Errors(diags) {
				t.Error(e)
			}
		})
	}
}

func TestOSLookup(t *testing.T) {
	lk := OSLookup()
	me, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	u, err := lk.User(me.Username)
	if err != nil {
		t.Fatal(err)
	}
	if got := me.Uid; u.Name != me.Username || formatID(u.UID) != got || formatID(u.GID) != me.Gid {
		t.Errorf("User(%q) = %+v; want uid %s gid %s", me.Username, u, me.Uid, me.Gid)
	}
	byID, err := lk.User(me.Uid)
	if err != nil || byID.UID != u.UID || byID.GID != u.GID || !reflect.DeepEqual(byID.Groups, u.Groups) {
		t.Errorf("User(%q) = %+v, %v; want %+v", me.Uid, byID, err, u)
	}
	gids, _ := me.GroupIds()
	if len(u.Groups) != len(gids) {
		t.Errorf("Groups = %v; want %v", u.Groups, gids)
	}

	// A UID without a passwd entry: its own number as GID, no groups.
	n, err := lk.User("3999999999")
	if err != nil || !reflect.DeepEqual(*n, UserSpec{Name: "3999999999", UID: 3999999999, GID: 3999999999}) {
		t.Errorf("User(3999999999) = %+v, %v", n, err)
	}
	if _, err := lk.User("no-such-user-acceptd"); err == nil {
		t.Error("User(no-such-user-acceptd) succeeded")
	}
	if _, err := lk.User("4294967295"); err == nil {
		t.Error("User(4294967295) succeeded; (uid_t)-1 is not a user")
	}
	g, err := lk.Group(me.Gid)
	if err != nil || formatID(g.GID) != me.Gid {
		t.Errorf("Group(%q) = %+v, %v", me.Gid, g, err)
	}
	if grp, err := user.LookupGroupId(me.Gid); err == nil {
		g, err := lk.Group(grp.Name)
		if err != nil || formatID(g.GID) != me.Gid {
			t.Errorf("Group(%q) = %+v, %v", grp.Name, g, err)
		}
	}
	if _, err := lk.Group("no-such-group-acceptd"); err == nil {
		t.Error("Group(no-such-group-acceptd) succeeded")
	}

	pl := lk.(PathLookup)
	if p, err := pl.LookPath("sh"); err != nil || !filepath.IsAbs(p) {
		t.Errorf("LookPath(sh) = %q, %v", p, err)
	}
	for _, bad := range []string{"./sh", "bin/sh", "/nonexistent/acceptd", "/etc/passwd", "no-such-program-acceptd", ""} {
		if p, err := pl.LookPath(bad); err == nil {
			t.Errorf("LookPath(%q) = %q; want an error", bad, p)
		}
	}
}

func formatID(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
