package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/acceptd/acceptd/config"
	"github.com/acceptd/acceptd/server/control"
)

// statusTimeout bounds `acceptd status`: a daemon that accepts on its
// control socket but does not answer must not hang the operator's shell.
const statusTimeout = 10 * time.Second

// runStatus implements `acceptd status [-control SOCK] [-json] [SERVICE...]`
// (CONTRACT: Status): 0 when the status was printed, 1 when the daemon
// cannot be reached or a SERVICE is unknown, 2 on a usage error.
func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", stderr)
	sock := fs.String("control", config.DefaultControlSocket, "control socket `SOCK` of the running daemon")
	asJSON := fs.Bool("json", false, "print the status as one JSON object")
	names, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}

	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	c := control.Dial(*sock)
	defer c.Close()
	st, err := c.Status(ctx, names...)
	if err != nil {
		fmt.Fprintf(stderr, "acceptd: %v\n", err)
		return 1
	}

	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(st); err != nil {
			fmt.Fprintf(stderr, "acceptd: write status: %v\n", err)
			return 1
		}
		return 0
	}
	if err := control.Render(stdout, st, useColor(stdout), time.Now()); err != nil {
		fmt.Fprintf(stderr, "acceptd: %v\n", err)
		return 1
	}
	return 0
}

// parseInterspersed parses flags wherever they stand among the
// positional arguments, so that `acceptd status hello -json` works as
// `systemctl status hello --no-pager` does. A "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// useColor reports whether w is a terminal that wants colour: not when
// NO_COLOR is set (https://no-color.org), nor for TERM=dumb.
func useColor(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	return os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}
