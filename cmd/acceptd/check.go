package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"

	"github.com/acceptd/acceptd/config"
)

// newFlagSet makes a flag set that reports usage errors on stderr and
// never exits by itself, so that the caller can return 2.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("acceptd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", stderr)
	path := fs.String("config", config.DefaultPath, "configuration `FILE`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "acceptd check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, diags := config.Load(*path, config.OSLookup())
	if printDiags(stderr, diags) {
		return 1
	}
	fmt.Fprintf(stdout, "%s: valid (%d services)\n", *path, len(cfg.Services))
	return 0
}

// printDiags prints every diagnostic as FILE:LINE,COL: message, sorted,
// and reports whether any of them is an error.
func printDiags(w io.Writer, diags hcl.Diagnostics) bool {
	config.SortDiagnostics(diags)
	for _, d := range diags {
		fmt.Fprintln(w, config.FormatDiagnostic(d))
	}
	return diags.HasErrors()
}

// fromFlags marks cfg, written by exec or proxy from their flags, as
// having no file: errors found while it starts (a failed bind) then name
// the service and address without a place in text the user never saw.
func fromFlags(cfg *config.Config) {
	for _, sc := range cfg.Services {
		sc.Range.Filename = ""
		for i := range sc.Listen {
			sc.Listen[i].Range.Filename = ""
		}
	}
}

// printFlagDiags is printDiags for the configuration exec and proxy write
// from their flags: a line and column in text the user never saw would
// only puzzle, so each message is prefixed with the command instead (the
// messages name the value and the setting).
func printFlagDiags(w io.Writer, command string, diags hcl.Diagnostics) bool {
	config.SortDiagnostics(diags)
	for _, d := range diags {
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		fmt.Fprintf(w, "%s: %s\n", command, msg)
	}
	return diags.HasErrors()
}
