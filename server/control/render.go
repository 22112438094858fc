package control

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/acceptd/acceptd/server"
)

// The dot systemctl puts before a unit, and the escapes it colours an
// active one with.
const (
	dot        = "●"
	colorGreen = "\x1b[0;1;32m"
	colorReset = "\x1b[0m"
)

// labelWidth is the width the labels are right-aligned to, as systemctl
// aligns "Listen:", "Accepted:" and "Triggers:".
const labelWidth = 11

// Render writes st the way `systemctl status` shows socket units
// (CONTRACT: Status), one block per service with a blank line between:
//
//	● hello — exec (per connection)
//	     Listen: [::]:31337 (Stream)
//	   Accepted: 8; Connected: 1; Refused: 0
//	   Triggers: ● hello@8-127.0.0.1:31337-127.0.0.1:50312  pid 4711  uid 61184  up 2.1s
//
// Proxies get a "Bytes: in N; out M" line. A further listen address or
// instance goes on a line of its own, aligned under the first. Uptimes are
// counted to now. With color, the dots of listening services and of their
// instances are green; without, no escape sequence is written.
func Render(w io.Writer, st server.Status, color bool, now time.Time) error {
	bw := bufio.NewWriter(w)
	for i, s := range st.Services {
		if i > 0 {
			bw.WriteString("\n")
		}
		renderService(bw, s, color, now)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}

func renderService(w *bufio.Writer, s server.ServiceStatus, color bool, now time.Time) {
	// A service without a listening socket is not active; its dot stays
	// uncoloured, as systemctl leaves an inactive unit's.
	active := len(s.Listen) > 0
	fmt.Fprintf(w, "%s %s — %s\n", paint(dot, color && active), s.Name, modeText(s.Mode))
	for i, l := range s.Listen {
		fmt.Fprintf(w, "%s %s (%s)\n", label("Listen", i), l, listenKind(l))
	}
	fmt.Fprintf(w, "%s %d; Connected: %d; Refused: %d\n", label("Accepted", 0), s.Accepted, s.Connected, s.Refused)
	if s.Mode == "proxy" {
		fmt.Fprintf(w, "%s in %s; out %s\n", label("Bytes", 0), humanBytes(s.BytesIn), humanBytes(s.BytesOut))
	}
	for i, in := range s.Instances {
		fmt.Fprintf(w, "%s %s %s", label("Triggers", i), paint(dot, color), in.Name)
		// Relayed connections (proxy, handoff) have no process of their
		// own: no pid and no uid to show.
		if in.Pid != 0 {
			fmt.Fprintf(w, "  pid %d  uid %d", in.Pid, in.UID)
		}
		// An exec instance's name already carries the remote address
		// (SERVICE@N-LOCAL-REMOTE); a UNIX peer's or a relay's may not.
		if in.Remote != "" && !strings.Contains(in.Name, in.Remote) {
			fmt.Fprintf(w, "  from %s", in.Remote)
		}
		if !in.Started.IsZero() {
			fmt.Fprintf(w, "  up %s", uptime(now.Sub(in.Started)))
		}
		w.WriteString("\n")
	}
}

// label returns "name:" right-aligned to labelWidth for the first line of
// a list (i == 0), and blanks of the same width for the lines after it.
func label(name string, i int) string {
	if i > 0 {
		return strings.Repeat(" ", labelWidth+1)
	}
	return fmt.Sprintf("%*s:", labelWidth, name)
}

func paint(s string, color bool) string {
	if !color {
		return s
	}
	return colorGreen + s + colorReset
}

// modeText spells out the server's Mode values; an unknown one is shown
// as it is.
func modeText(mode string) string {
	switch mode {
	case "exec":
		return "exec (per connection)"
	case "exec-wait":
		return "exec (wait)"
	case "proxy":
		return "proxy (relay)"
	case "":
		return "unknown mode"
	default:
		// "handoff", "builtin" and anything newer read well as they are.
		return mode
	}
}

// listenKind names the socket type the way systemd's Listen line does.
// The server reports datagram addresses with their scheme ("udp://…") and
// handoff receivers as "handoff:/path"; everything else is a stream.
func listenKind(addr string) string {
	switch {
	case strings.HasPrefix(addr, "udp://"), strings.HasPrefix(addr, "udp4://"), strings.HasPrefix(addr, "udp6://"):
		return "Datagram"
	case strings.HasPrefix(addr, "handoff:"):
		return "Handoff"
	default:
		return "Stream"
	}
}

// uptime is short and stays readable from milliseconds to months:
// 0.3s, 2.1s, 42s, 3m04s, 5h07m, 12d03h.
func uptime(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		day := 24 * time.Hour
		return fmt.Sprintf("%dd%02dh", int(d/day), int(d%day/time.Hour))
	}
}

// humanBytes writes n in IEC units with one decimal: 512 B, 1.5 KiB,
// 12.0 MiB.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
