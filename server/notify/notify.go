package notify

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

const (
	envSocket      = "NOTIFY_SOCKET"
	envWatchdog    = "WATCHDOG_USEC"
	envWatchdogPID = "WATCHDOG_PID"

	// sendTimeout bounds one notification. A datagram to a UNIX socket
	// blocks while the receiver's queue is full; a stuck service manager
	// must not stall a shutdown or the watchdog goroutine for good.
	sendTimeout = 5 * time.Second
	// minPing is the shortest watchdog ping period. A WatchdogSec= shorter
	// than 2 ms cannot be honoured anyway, and a ticker below this spins.
	minPing = time.Millisecond
)

// Notifier sends notifications to the service manager. The zero value is
// not usable; create one with New. Its methods may be called from several
// goroutines.
type Notifier struct {
	// addr is the manager's socket; nil when NOTIFY_SOCKET was unset.
	addr *net.UnixAddr
	// addrErr is why a NOTIFY_SOCKET that was set cannot be used.
	addrErr  error
	raw      string
	watchdog time.Duration
	warnings []string
}

// New reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID through getenv
// (os.Getenv in production) and always removes all three through unsetenv
// (os.Unsetenv), so that children do not inherit them. pid is
// os.Getpid(), compared with WATCHDOG_PID.
//
// Nothing here is fatal: a variable that cannot be used is reported by
// [Notifier.Warnings], and the Notifier does what it still can.
//   - NOTIFY_SOCKET unset or empty: Enabled is false; every method is a
//     no-op returning nil.
//   - NOTIFY_SOCKET neither an absolute path nor an @abstract name (for
//     example systemd's vsock: form, which acceptd does not speak):
//     Enabled is true, and every notification returns an error saying so.
//   - WATCHDOG_USEC not a positive number of microseconds, or too large
//     for a time.Duration: no watchdog, with a warning.
//   - WATCHDOG_PID set to another process: no watchdog, with a warning.
//     Unset: the watchdog is for this process, as sd_watchdog_enabled(3)
//     assumes.
func New(getenv func(string) string, unsetenv func(string) error, pid int) *Notifier {
	n := &Notifier{raw: getenv(envSocket)}
	wusec, wpid := getenv(envWatchdog), getenv(envWatchdogPID)
	for _, k := range []string{envSocket, envWatchdog, envWatchdogPID} {
		if err := unsetenv(k); err != nil {
			n.warn(fmt.Sprintf("unset %s: %v", k, err))
		}
	}

	switch {
	case n.raw == "":
	case strings.HasPrefix(n.raw, "/") || strings.HasPrefix(n.raw, "@") && len(n.raw) > 1:
		// The net package puts a leading '@' in the abstract namespace.
		n.addr = &net.UnixAddr{Name: n.raw, Net: "unixgram"}
	default:
		n.addrErr = fmt.Errorf("%s=%q: only an absolute path or an @abstract name is supported", envSocket, n.raw)
		n.warn(n.addrErr.Error())
	}

	if wusec == "" {
		return n
	}
	usec, err := strconv.ParseUint(wusec, 10, 64)
	switch {
	case err != nil && errors.Is(err, strconv.ErrRange), err == nil && usec > math.MaxInt64/uint64(time.Microsecond):
		n.warn(fmt.Sprintf("%s=%s is too large: watchdog not pinged", envWatchdog, wusec))
		return n
	case err != nil || usec == 0:
		n.warn(fmt.Sprintf("%s=%q is not a positive number of microseconds: watchdog not pinged", envWatchdog, wusec))
		return n
	}
	if wpid != "" {
		p, err := strconv.Atoi(wpid)
		if err != nil || p != pid {
			n.warn(fmt.Sprintf("%s=%s is not this process (%d): watchdog not pinged", envWatchdogPID, wpid, pid))
			return n
		}
	}
	if n.raw == "" {
		n.warn(fmt.Sprintf("%s set without %s: watchdog not pinged", envWatchdog, envSocket))
		return n
	}
	n.watchdog = time.Duration(usec) * time.Microsecond
	return n
}

func (n *Notifier) warn(w string) { n.warnings = append(n.warnings, w) }

// Warnings returns what New could not use and why, for the log.
func (n *Notifier) Warnings() []string { return append([]string(nil), n.warnings...) }

// Enabled reports whether a service manager listens (NOTIFY_SOCKET was
// set).
func (n *Notifier) Enabled() bool { return n.raw != "" }

// WatchdogInterval is WATCHDOG_USEC when this process must ping the
// watchdog, and 0 otherwise.
func (n *Notifier) WatchdogInterval() time.Duration { return n.watchdog }

// Ready sends READY=1, with STATUS=status unless status is empty. Send it
// once every listener is bound, and again when a reload has finished.
func (n *Notifier) Ready(status string) error {
	if status == "" {
		return n.send(daemon.SdNotifyReady)
	}
	return n.send(daemon.SdNotifyReady, statusLine(status))
}

// Status sends STATUS=status, the line systemctl status shows.
func (n *Notifier) Status(status string) error { return n.send(statusLine(status)) }

// Reloading sends RELOADING=1 with MONOTONIC_USEC=, which systemd (since
// v253, Type=notify-reload) needs to tell this reload from an earlier
// one. Send Ready when the reload has finished, whether it was taken or
// refused.
func (n *Notifier) Reloading() error {
	mono := strings.TrimSuffix(daemon.SdNotifyMonotonicUsec(), "\n")
	if mono == "" {
		return n.send(daemon.SdNotifyReloading)
	}
	return n.send(daemon.SdNotifyReloading, mono)
}

// Stopping sends STOPPING=1: the service is shutting down.
func (n *Notifier) Stopping() error { return n.send(daemon.SdNotifyStopping) }

// RunWatchdog sends WATCHDOG=1 every half WatchdogInterval until ctx is
// done. It returns at once when no watchdog was asked for. A failed ping
// is passed to onError (which may be nil) and does not stop the pings: a
// manager that stays unreachable kills the service, which is the
// watchdog's purpose.
func (n *Notifier) RunWatchdog(ctx context.Context, onError func(error)) {
	if n.watchdog == 0 {
		return
	}
	t := time.NewTicker(max(n.watchdog/2, minPing))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := n.send(daemon.SdNotifyWatchdog); err != nil && onError != nil {
				onError(err)
			}
		}
	}
}

// statusLine keeps a status to one line: a newline would let the text
// set other fields (a status "x\nREADY=1" would declare readiness).
func statusLine(status string) string {
	return "STATUS=" + strings.NewReplacer("\n", " ", "\x00", " ").Replace(status)
}

// send writes one datagram with the lines joined by newlines. It does not
// call daemon.SdNotify, which reads NOTIFY_SOCKET at every call: New has
// removed it from the environment by then, so that children cannot see it.
func (n *Notifier) send(lines ...string) error {
	switch {
	case n.raw == "":
		return nil
	case n.addrErr != nil:
		return fmt.Errorf("notify: %w", n.addrErr)
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("notify %s: %w", n.raw, err)
	}
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("notify %s: %w", n.raw, err)
	}
	if _, err := c.Write([]byte(strings.Join(lines, "\n"))); err != nil {
		return fmt.Errorf("notify %s: %w", n.raw, err)
	}
	return nil
}
