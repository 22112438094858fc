package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/acceptd/acceptd/config"
)

// listFlag collects a flag given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func hclString(s string) string { return config.Quote(s) }

func hclList(items []string) string { return config.QuoteList(items) }

// runExec is `acceptd exec -listen ADDR -- COMMAND ARGS`: one inetd-style
// service without a configuration file. It writes the equivalent
// configuration and loads it like any other, so that it gets exactly the
// same checks and defaults.
func runExec(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("exec", stderr)
	var listen listFlag
	fs.Var(&listen, "listen", "listen `ADDR` (repeatable)")
	maxConns := fs.Int("max-connections", 64, "concurrent connections")
	name := fs.String("name", "exec", "service `NAME` in logs and instance names")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cmd := fs.Args()
	if len(listen) == 0 || len(cmd) == 0 {
		fmt.Fprintln(stderr, "usage: acceptd exec -listen ADDR [-max-connections N] -- COMMAND [ARG...]")
		return 2
	}
	env := readStartEnv()
	if env.err != nil {
		fmt.Fprintf(stderr, "acceptd: socket activation: %v\n", env.err)
		return 1
	}
	src := fmt.Sprintf(`log {
  level = "info"
}

service %s {
  listen          = %s
  max_connections = %d
  exec {
    command = %s
  }
}
`, hclString(*name), hclList(listen), *maxConns, hclList(cmd))
	cfg, diags := config.Parse("acceptd exec", []byte(src), config.OSLookup())
	if printFlagDiags(stderr, "acceptd exec", diags) {
		return 1
	}
	fromFlags(cfg)
	return serveConfig(cfg, daemonOptions{}, env, stderr)
}
