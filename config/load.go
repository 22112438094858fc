package config

import (
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// Load reads and validates the configuration file at path. See [Parse].
func Load(path string, lookup Lookup) (*Config, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read configuration",
			Detail:   err.Error(),
			Subject:  &hcl.Range{Filename: path},
		}}
	}
	cfg, diags := Parse(path, src, lookup)
	if cfg != nil {
		cfg.Path = path
	}
	return cfg, diags
}

// Parse decodes and validates a configuration held in memory; filename
// names it in diagnostics. Users, groups and commands are resolved
// through lookup (see [Lookup] for what nil means).
//
// Every problem is reported, each with its place in the file, not only
// the first. When the diagnostics hold an error the Config is nil;
// otherwise it is complete, with every default applied, and the
// diagnostics (if any) are warnings.
func Parse(filename string, src []byte, lookup Lookup) (*Config, hcl.Diagnostics) {
	parser := hclparse.NewParser()
	f, diags := parser.ParseHCL(src, filename)
	if diags.HasErrors() {
		// The syntax tree after a syntax error is a guess; decoding it
		// would mostly add noise to the one real problem.
		return nil, diags
	}
	var root fileRoot
	diags = append(diags, gohcl.DecodeBody(f.Body, nil, &root)...)

	d := &decoder{lookup: lookup}
	cfg, more := d.config(&root)
	more = append(more, validate(cfg)...)
	diags = append(diags, dropShadowed(more, diags)...)
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}

// dropShadowed leaves out the diagnostics of ours that point where gohcl
// already found a problem: a value gohcl could not decode is left at its
// zero value, and a second message about that zero ("must be 1 or more")
// would only confuse.
func dropShadowed(ours, gohcls hcl.Diagnostics) hcl.Diagnostics {
	type pos struct {
		file string
		byte int
	}
	bad := map[pos]bool{}
	for _, g := range gohcls {
		if g.Subject != nil && g.Severity == hcl.DiagError {
			bad[pos{g.Subject.Filename, g.Subject.Start.Byte}] = true
		}
	}
	var out hcl.Diagnostics
	for _, d := range ours {
		if d.Subject != nil && bad[pos{d.Subject.Filename, d.Subject.Start.Byte}] {
			continue
		}
		out = append(out, d)
	}
	return out
}

// decoder carries what every decodeX needs from the caller.
type decoder struct {
	lookup Lookup
}

func (d *decoder) config(root *fileRoot) (*Config, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	add := func(more hcl.Diagnostics) { diags = append(diags, more...) }
	cfg := &Config{
		Log:          Log{Level: "info", Format: "console"},
		Control:      Control{Socket: DefaultControlSocket, Mode: 0o600},
		DynamicUsers: UIDRange{First: 61184, Last: 65519}, // systemd's range
	}
	if l := root.Log; l != nil {
		var more hcl.Diagnostics
		cfg.Log.Level, more = oneOf(l.Level, l.LevelRange, "level", "info", "debug", "info", "warn", "error")
		add(more)
		cfg.Log.Format, more = oneOf(l.Format, l.FormatRange, "format", "console", "console", "json")
		add(more)
	}
	if c := root.Control; c != nil {
		if c.Socket != nil {
			a, err := ParseAddress(*c.Socket)
			switch {
			case err != nil:
				add(hcl.Diagnostics{diagf(c.SocketRange, "Invalid control socket", "bad address %q: %s.", *c.Socket, err)})
			case a.Kind != KindUnix:
				add(hcl.Diagnostics{diagf(c.SocketRange, "Invalid control socket",
					"socket = %q must be a UNIX socket path or @name.", *c.Socket)})
			default:
				cfg.Control.Socket = a.Path
			}
		}
		if c.Mode != nil {
			m, more := octalMode(*c.Mode, c.ModeRange, "mode", 0o777)
			add(more)
			if more == nil {
				cfg.Control.Mode = os.FileMode(m)
			}
		}
	}
	if m := root.Metrics; m != nil && !absent(m.ListenRange) {
		a, err := ParseAddress(m.Listen)
		switch {
		case err != nil:
			add(hcl.Diagnostics{diagf(m.ListenRange, "Invalid metrics address", "bad address %q: %s.", m.Listen, err)})
		case a.Kind != KindTCP && a.Kind != KindUnix:
			add(hcl.Diagnostics{diagf(m.ListenRange, "Invalid metrics address",
				"listen = %q must be a TCP or UNIX stream address.", m.Listen)})
		default:
			cfg.Metrics = &Metrics{Listen: a}
		}
	}
	if root.ExitIdleTime != nil {
		var more hcl.Diagnostics
		cfg.ExitIdleTime, more = parseDuration(*root.ExitIdleTime, root.ExitIdleTimeRange, "exit_idle_time")
		add(more)
	}
	if u := root.DynamicUsers; u != nil && !absent(u.RangeRange) {
		r, more := uidRange(u.Range, u.RangeRange)
		add(more)
		if more == nil {
			cfg.DynamicUsers = r
		}
	}
	for _, fs := range root.Services {
		s, more := d.service(fs)
		add(more)
		if s != nil {
			cfg.Services = append(cfg.Services, s)
		}
	}
	return cfg, diags
}

// uidRange parses "FIRST-LAST". UID 0 is never handed out: a dynamic
// user must not be root.
func uidRange(s string, rng hcl.Range) (UIDRange, hcl.Diagnostics) {
	bad := hcl.Diagnostics{diagf(rng, "Invalid dynamic user range",
		"range = %q; want \"FIRST-LAST\" with 1 <= FIRST <= LAST < 4294967295, such as \"61184-65519\".", s)}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return UIDRange{}, bad
	}
	first, ok1 := parseID(a)
	last, ok2 := parseID(b)
	if !ok1 || !ok2 || first == 0 || first > last {
		return UIDRange{}, bad
	}
	return UIDRange{First: first, Last: last}, nil
}

// user resolves a user name through the Lookup.
func (d *decoder) user(name string, rng hcl.Range, field string) (*UserSpec, hcl.Diagnostics) {
	if name == "" {
		return nil, hcl.Diagnostics{diagf(rng, "Invalid user", "%s must not be empty.", field)}
	}
	if d.lookup == nil {
		u := &UserSpec{Name: name}
		if id, ok := parseID(name); ok {
			u.UID, u.GID = id, id
		}
		return u, nil
	}
	u, err := d.lookup.User(name)
	if err != nil || u == nil {
		return nil, hcl.Diagnostics{diagf(rng, "Unknown user", "%s = %q: %s.", field, name, errText(err, "no such user"))}
	}
	return u, nil
}

// group resolves a group name through the Lookup.
func (d *decoder) group(name string, rng hcl.Range, field string) (*GroupSpec, hcl.Diagnostics) {
	if name == "" {
		return nil, hcl.Diagnostics{diagf(rng, "Invalid group", "%s must not be empty.", field)}
	}
	if d.lookup == nil {
		g := &GroupSpec{Name: name}
		if id, ok := parseID(name); ok {
			g.GID = id
		}
		return g, nil
	}
	g, err := d.lookup.Group(name)
	if err != nil || g == nil {
		return nil, hcl.Diagnostics{diagf(rng, "Unknown group", "%s = %q: %s.", field, name, errText(err, "no such group"))}
	}
	return g, nil
}

// command decodes a command list and resolves its program to an absolute
// path now, so that no connection pays for a $PATH search and a missing
// program is a configuration error rather than a failure per connection.
func (d *decoder) command(expr hcl.Expression, block hcl.Range) ([]string, hcl.Diagnostics) {
	if isNull(expr) {
		// gohcl does not require attributes decoded as expressions.
		return nil, hcl.Diagnostics{diagf(block, "Missing required argument",
			"The argument \"command\" is required, but no definition was found.")}
	}
	var cmd []string
	if diags := gohcl.DecodeExpression(expr, nil, &cmd); diags.HasErrors() {
		if !typeMismatch(diags) {
			return nil, diags
		}
		return nil, hcl.Diagnostics{diagf(expr.Range(), "Invalid command",
			"command must be a list of strings, the program first, such as [\"/bin/cat\", \"-u\"].")}
	}
	if len(cmd) == 0 || cmd[0] == "" {
		return nil, hcl.Diagnostics{diagf(expr.Range(), "Invalid command",
			"command must name a program as its first element.")}
	}
	for _, arg := range cmd {
		if strings.ContainsRune(arg, 0) {
			return nil, hcl.Diagnostics{diagf(expr.Range(), "Invalid command", "an argument contains a NUL byte.")}
		}
	}
	resolve := hostLookPath
	if pl, ok := d.lookup.(PathLookup); ok {
		resolve = pl.LookPath
	}
	p, err := resolve(cmd[0])
	if err != nil {
		return nil, hcl.Diagnostics{diagf(expr.Range(), "Program not found",
			"%s: %s.", strconv.Quote(cmd[0]), errText(err, "not found"))}
	}
	out := slices.Clone(cmd)
	out[0] = p
	return out, nil
}

func errText(err error, def string) string {
	if err == nil {
		return def
	}
	return err.Error()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
