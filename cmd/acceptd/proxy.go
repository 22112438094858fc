package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/acceptd/acceptd/config"
)

// runProxy is `acceptd proxy [-c N] [-exit-idle-time DUR] [-listen ADDR]...
// TARGET`, a drop-in for `systemd-socket-proxyd TARGET` (sockets from
// LISTEN_FDS) and for `simpletcpunixrelay LISTEN TARGET` (with -listen).
// Like exec, it writes the equivalent configuration and loads it, so the
// same checks and defaults apply.
func runProxy(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("proxy", stderr)
	var listen listFlag
	fs.Var(&listen, "listen", "listen `ADDR` (repeatable); default: the sockets systemd passes")
	// systemd-socket-proxyd's default and flag names.
	maxConns := fs.Int("connections-max", 256, "concurrent connections")
	fs.IntVar(maxConns, "c", 256, "short for -connections-max")
	exitIdle := fs.String("exit-idle-time", "", "exit after this `DURATION` without connections: seconds or a systemd time span (\"30\", \"5min 20s\", \"infinity\")")
	name := fs.String("name", "proxy", "service `NAME` in logs")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: acceptd proxy [-c N] [-exit-idle-time DUR] [-listen ADDR]... TARGET")
		return 2
	}
	if *maxConns < 1 {
		fmt.Fprintf(stderr, "acceptd proxy: -connections-max %d: it must be 1 or more\n", *maxConns)
		return 2
	}
	// socket-proxyd takes systemd time spans, seconds when bare. 0 and
	// infinity both mean never, as exit_idle_time = "0s" does (with 0
	// socket-proxyd exits as soon as its last connection has ended).
	idle := time.Duration(0)
	if *exitIdle != "" {
		d, _, err := parseTimespan(*exitIdle)
		if err != nil {
			fmt.Fprintf(stderr, "acceptd proxy: -exit-idle-time %q: %v\n", *exitIdle, err)
			return 2
		}
		idle = d
	}
	env := readStartEnv()
	if env.err != nil {
		fmt.Fprintf(stderr, "acceptd: socket activation: %v\n", env.err)
		return 1
	}
	if len(listen) == 0 {
		for _, sock := range env.sockets.All() {
			listen = append(listen, "fd:"+strconv.Itoa(sock.FD))
		}
		if len(listen) == 0 {
			fmt.Fprintln(stderr, "acceptd proxy: no -listen address and no socket passed by systemd (LISTEN_FDS)")
			return 1
		}
	}
	src := "log {\n  level = \"info\"\n}\n"
	if idle > 0 {
		src += "exit_idle_time = " + hclString(idle.String()) + "\n"
	}
	src += fmt.Sprintf(`
service %s {
  listen          = %s
  max_connections = %d
  proxy {
    backend = %s
  }
}
`, hclString(*name), hclList(listen), *maxConns, hclString(proxyTarget(fs.Arg(0))))
	cfg, diags := config.Parse("acceptd proxy", []byte(src), config.OSLookup())
	if printFlagDiags(stderr, "acceptd proxy", diags) {
		return 1
	}
	fromFlags(cfg)
	return serveConfig(cfg, daemonOptions{}, env, stderr)
}

// proxyTarget is TARGET as a backend address: socket-proxyd connects to
// port 80 of a host given without one ("127.0.0.1", "www"), so such a
// TARGET gets ":80". Everything else is acceptd's own address syntax,
// where a bare number is a port on this host.
func proxyTarget(t string) string {
	if t == "" || strings.ContainsAny(t, ":/@") || strings.Trim(t, "0123456789") == "" {
		return t
	}
	return t + ":80"
}
