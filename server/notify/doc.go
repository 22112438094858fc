// Package notify speaks the sd_notify(3) protocol, so that acceptd can run
// as a Type=notify service: READY=1 once every listener is bound, STATUS=
// lines, RELOADING=1 and STOPPING=1, and WATCHDOG=1 pings when the unit
// sets WatchdogSec=.
//
// [New] reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID once and
// removes them from the environment, so that no child of acceptd talks to
// systemd in acceptd's name. Without NOTIFY_SOCKET every method does
// nothing and returns nil: the same code runs standalone and under systemd.
//
// The package decides nothing about when to notify; the server does.
package notify
