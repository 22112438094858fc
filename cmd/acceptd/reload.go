package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/acceptd/acceptd/config"
	"github.com/acceptd/acceptd/server"
	"github.com/acceptd/acceptd/server/control"
)

// reloadTimeout bounds `acceptd reload`; a reload binds sockets and may
// wait on them, so it gets longer than a status.
const reloadTimeout = 2 * time.Minute

// runReload implements `acceptd reload [-control SOCK]`, the same as
// SIGHUP but with an answer: 0 when the configuration was applied, 1 when
// it was refused (its errors on stderr) or the daemon cannot be reached,
// 2 on a usage error.
func runReload(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("reload", stderr)
	sock := fs.String("control", config.DefaultControlSocket, "control socket `SOCK` of the running daemon")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "acceptd reload: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	c := control.Dial(*sock)
	defer c.Close()
	res, err := c.Reload(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "acceptd: %v\n", err)
		return 1
	}
	if len(res.Errors) > 0 {
		fmt.Fprintln(stderr, "acceptd: reload refused; the running configuration is kept:")
		for _, e := range res.Errors {
			fmt.Fprintln(stderr, e)
		}
		return 1
	}
	fmt.Fprintln(stdout, reloadSummary(res))
	return 0
}

// reloadSummary is one line: "reloaded: added a, b; removed c; changed d"
// or "reloaded: no changes".
func reloadSummary(res server.ReloadResult) string {
	var parts []string
	for _, p := range []struct {
		verb  string
		names []string
	}{
		{"added", res.Added},
		{"removed", res.Removed},
		{"changed", res.Changed},
	} {
		if len(p.names) > 0 {
			parts = append(parts, p.verb+" "+strings.Join(p.names, ", "))
		}
	}
	if len(parts) == 0 {
		return "reloaded: no changes"
	}
	return "reloaded: " + strings.Join(parts, "; ")
}
