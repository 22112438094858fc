// Command acceptd is a superserver: one daemon that owns many listening
// sockets and, per service, starts a program per connection, relays each
// connection to a backend, or hands the accepted socket to another daemon.
// See README.md and CONTRACT for the command line.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/acceptd/acceptd/spawn"
)

const usage = `usage: acceptd COMMAND [FLAGS]

commands:
  run     [-config FILE]                      run the superserver
  check   [-config FILE]                      validate a configuration
  status  [-control SOCK] [-json] [SERVICE...] show the running daemon's state
  reload  [-control SOCK]                     reload the configuration
  proxy   [-c N] [-exit-idle-time DUR] [-listen ADDR]... TARGET
  exec    -listen ADDR [-max-connections N] -- COMMAND [ARG...]
  import  [-services FILE] inetd|xinetd FILE...  translate inetd.conf/xinetd files to HCL
  version                                     print version and build info
`

func main() {
	// A re-executed spawn helper must do its work before anything else
	// (no flags, no logger): it becomes the per-connection program.
	spawn.MaybeRunHelper()
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// dispatch runs one subcommand and returns the process's exit status: 0 on
// success, 1 on a configuration or start-up error, 2 on a usage error.
func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runRun(rest, stdout, stderr)
	case "check":
		return runCheck(rest, stdout, stderr)
	case "status":
		return runStatus(rest, stdout, stderr)
	case "reload":
		return runReload(rest, stdout, stderr)
	case "proxy":
		return runProxy(rest, stdout, stderr)
	case "import":
		return runImport(rest, stdout, stderr)
	case "exec":
		return runExec(rest, stdout, stderr)
	case "version", "-version", "--version":
		return runVersion(stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "acceptd: unknown command %q\n\n%s", cmd, usage)
	return 2
}
