package importer

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/acceptd/acceptd/config"
)

// File is one input file: its name, for the comments and problems that
// point into it, and its contents.
type File struct {
	Name string
	Data []byte
}

// Options tune a translation.
type Options struct {
	// Services resolves service names to ports. Nil understands only
	// numeric ports: every named service is then left untranslated, with
	// a note.
	Services *Services
	// Command is how the header comment names the translation, such as
	// "acceptd import inetd"; empty leaves that line out.
	Command string
}

// Problem is a line that could not be parsed at all. Such a line
// contributes nothing to the output; the rest of the input is still
// translated.
type Problem struct {
	File    string
	Line    int
	Message string
}

// String formats the problem as FILE:LINE: message.
func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
}

// Result is one translation.
type Result struct {
	// HCL is the acceptd configuration, formatted as `hclwrite.Format`
	// formats it. It holds only service blocks and comments, so it can
	// be used as a file of its own or pasted into an existing one.
	HCL []byte
	// Services counts the services written out ready to run, Disabled
	// those written commented out (disabled in the original, or not safe
	// to enable as translated), Skipped those with no translation at all.
	Services, Disabled, Skipped int
	// Notes counts the "note:" comments in HCL.
	Notes int
	// Problems are the lines that could not be parsed, in input order.
	Problems []Problem
}

// entry is one piece of the output: a service block, written out or
// commented out, or (svc == nil) a comment about something that has no
// translation at all.
type entry struct {
	// origin says where in the input the entry comes from, as comment
	// lines ("FILE:LINE: text").
	origin []string
	notes  []string
	svc    *service
	// off writes the service commented out; why says why, as a note.
	off bool
}

func (e *entry) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !slices.Contains(e.notes, msg) {
		e.notes = append(e.notes, msg)
	}
}

// disable writes the entry's service commented out and says why.
func (e *entry) disable(format string, args ...any) {
	e.off = true
	e.note(format, args...)
}

// service is the translation of one inetd line or xinetd block, in the
// terms of CONTRACT: Configuration. Zero values are left out of the
// output, so acceptd's defaults apply.
type service struct {
	name           string
	listen         []string
	maxConnections int
	maxPerSource   int
	allow, deny    []string
	rate           *rateLimit
	socket         socketOptions

	// Exactly one of builtin, backend and exec is set.
	builtin string
	backend string
	exec    *execBlock
}

type rateLimit struct {
	connections int
	interval    string
}

type socketOptions struct {
	ipv6Only, keepalive, noDelay bool
}

type execBlock struct {
	command []string
	// wait is inetd's "wait": the program gets the listening socket
	// (accept = false).
	wait        bool
	user, group string
	env         []keyValue
	umask       string
	limits      []keyValue
}

type keyValue struct{ key, value string }

// output collects the entries of one translation and gives each service
// a unique name and each enabled listen address a single owner.
type output struct {
	opt     Options
	kind    string // "inetd" or "xinetd"
	files   []string
	header  []string // notes that concern the whole input
	entries []*entry
	names   map[string]bool
	probs   []Problem
}

func newOutput(kind string, files []File, opt Options) *output {
	o := &output{opt: opt, kind: kind, names: map[string]bool{}}
	for _, f := range files {
		o.files = append(o.files, f.Name)
	}
	return o
}

func (o *output) problem(file string, line int, format string, args ...any) {
	o.probs = append(o.probs, Problem{File: file, Line: line, Message: fmt.Sprintf(format, args...)})
}

// add appends an entry. The service's name is made unique: first as
// given, then with alt appended ("echo-udp"), then with a number.
func (o *output) add(e *entry, alt string) {
	o.entries = append(o.entries, e)
	if e.svc == nil {
		return
	}
	base := sanitizeName(e.svc.name)
	name := base
	if o.names[name] && alt != "" {
		name = base + "-" + alt
	}
	for i := 2; o.names[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	o.names[name] = true
	e.svc.name = name
}

// sanitizeName keeps the characters acceptd allows in a service name
// (config: service names) and replaces the others with '-'.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '_', r == '.', r == ':', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-")
	if n == "" {
		return "service"
	}
	return n
}

// refusedNote starts the note of a service acceptd would refuse as
// translated; the rest is acceptd's own reason.
const refusedNote = "acceptd would refuse this service: "

// checkServices writes commented out, with acceptd's reason, each
// service acceptd would refuse on its own, such as a redirect to the
// service's own address: the translation must load on any host that has
// the programs, users and groups it names. Sockets shared between
// services are claimListeners' to settle.
func (o *output) checkServices() {
	for _, e := range o.entries {
		if e.svc == nil || e.off {
			continue
		}
		_, diags := config.Parse("service", e.svc.render(), config.AsWritten())
		for _, d := range diags {
			if d.Severity != hcl.DiagError {
				continue
			}
			msg := d.Summary
			if d.Detail != "" {
				msg += ": " + placeInText.ReplaceAllString(d.Detail, "")
			}
			e.disable("%s%s", refusedNote, msg)
			break
		}
	}
}

// placeInText matches the " at FILE:LINE,COL" a diagnostic's detail may
// give of a second place, which means nothing in the importer's output.
var placeInText = regexp.MustCompile(` at service:[0-9]+,[0-9]+`)

// claimListeners comments out a service whose socket an earlier enabled
// service already has: acceptd would refuse the file otherwise, and the
// earlier one is what inetd would have bound first.
func (o *output) claimListeners() {
	owner := map[string]string{}
	for _, e := range o.entries {
		if e.svc == nil || e.off {
			continue
		}
		var keys []string
		clash := ""
		for _, l := range e.svc.listen {
			a, err := config.ParseAddress(l)
			if err != nil {
				// Every address is built from parsed parts; a bad one
				// is a bug of this package.
				panic(fmt.Sprintf("importer built a bad address %q: %v", l, err))
			}
			if a.Port == 0 && (a.Kind == config.KindTCP || a.Kind == config.KindUDP) {
				continue
			}
			if other, dup := owner[a.Key()]; dup {
				clash = fmt.Sprintf("%s is already the socket of service %q", l, other)
				break
			}
			keys = append(keys, a.Key())
		}
		if clash != "" {
			e.disable("%s; acceptd gives each socket to one service.", clash)
			continue
		}
		for _, k := range keys {
			owner[k] = e.svc.name
		}
	}
}

func (o *output) result() Result {
	var b strings.Builder
	// Problems in input order: a block left open is found at the end of
	// its file but reported where it starts.
	order := map[string]int{}
	for i, f := range o.files {
		order[f] = i
	}
	probs := slices.Clone(o.probs)
	slices.SortStableFunc(probs, func(a, b Problem) int {
		if d := order[a.File] - order[b.File]; d != 0 {
			return d
		}
		return a.Line - b.Line
	})
	r := Result{Problems: probs}
	writeComment(&b, "", fmt.Sprintf("acceptd configuration translated from %s by %s.", o.kind, commandOr(o.opt.Command)))
	for _, f := range o.files {
		writeLine(&b, "  "+f)
	}
	writeComment(&b, "", `Read it before use: every "note:" says what acceptd does differently or not at all, and services written commented out need a decision before they can run.`)
	for _, h := range o.header {
		writeComment(&b, "note: ", h)
		r.Notes++
	}
	for _, e := range o.entries {
		b.WriteString("\n")
		for _, line := range e.origin {
			writeLine(&b, line)
		}
		for _, n := range e.notes {
			writeComment(&b, "note: ", n)
			r.Notes++
		}
		switch {
		case e.svc == nil:
			r.Skipped++
			writeComment(&b, "", "(not translated)")
		case e.off:
			r.Disabled++
			for line := range strings.Lines(string(e.svc.render())) {
				b.WriteString("# " + line)
			}
		default:
			r.Services++
			b.Write(e.svc.render())
		}
	}
	r.HCL = []byte(b.String())
	return r
}

func commandOr(c string) string {
	if c == "" {
		return "acceptd's importer"
	}
	return "`" + c + "`"
}

// writeLine writes one line of the input as a comment, unwrapped, so
// that it reads as the line it was.
func writeLine(b *strings.Builder, text string) {
	b.WriteString(strings.TrimRight("# "+printable(text), " ") + "\n")
}

// printable shows control characters from the input as '?' so that a
// comment can never end early.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' && r != '\t' || r == 0x7f || r == '\u2028' || r == '\u2029' || r == '\u0085' {
			return '?'
		}
		return r
	}, s)
}

// writeComment writes text as '#' comment lines of at most about 78
// columns, the first starting with prefix and the others indented under
// it.
func writeComment(b *strings.Builder, prefix, text string) {
	text = printable(text)
	const width = 78
	indent := strings.Repeat(" ", len(prefix))
	line := "# " + prefix
	lead := len(line)
	for _, w := range strings.Fields(text) {
		if len(line) > lead && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line = "# " + indent
			lead = len(line)
		}
		if len(line) > lead {
			line += " "
		}
		line += w
	}
	b.WriteString(strings.TrimRight(line, " ") + "\n")
}
