package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

func runVersion(w io.Writer) int {
	version, settings := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision", "vcs.time", "vcs.modified", "GOOS", "GOARCH":
				settings += fmt.Sprintf("  %s=%s\n", s.Key, s.Value)
			}
		}
		fmt.Fprintf(w, "acceptd %s (%s)\n%s", version, bi.GoVersion, settings)
		return 0
	}
	fmt.Fprintf(w, "acceptd %s\n", version)
	return 0
}
