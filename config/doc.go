// Package config turns an acceptd HCL file into a validated model.
//
// [Load] and [Parse] read the configuration language of CONTRACT:
// Configuration and return a [Config] whose values are typed and checked
// (durations are time.Duration, addresses are parsed [Address]es, users
// and groups are resolved to IDs, commands to absolute paths) with every
// default applied, or hcl.Diagnostics naming every mistake in the file at
// once, each with its file, line and column. [FormatDiagnostic] renders
// one as `acceptd check` prints it: "FILE:LINE,COL: message".
//
// Decoding happens in two layers: gohcl fills the file structs of
// file.go, which mirror what the user writes and keep each value's
// range; one decode function per block (service.go, exec.go, proxy.go,
// handoff.go, socket.go) converts them into the model of config.go; and
// validate.go checks what spans services, such as a listen address used
// twice.
//
// The package asks the host only through a [Lookup] (users, groups and,
// optionally, programs), so its tests are hermetic. It opens no sockets
// and starts no processes: binding, inheriting sockets from systemd and
// spawning children belong to the server and spawn packages, which take
// the model as it is.
package config
