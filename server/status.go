package server

import "time"

// Status is a snapshot of the running daemon, in the shape of CONTRACT:
// Status (`acceptd status -json`).
type Status struct {
	Services []ServiceStatus `json:"services"`
}

// ServiceStatus is one service's part of a Status.
type ServiceStatus struct {
	Name string `json:"name"`
	Mode string `json:"mode"`
	// Listen holds each listening socket's address as bound, with the real
	// port when 0 was asked ("127.0.0.1:31337", "/run/x.sock").
	Listen    []string `json:"listen"`
	Accepted  uint64   `json:"accepted"`
	Connected uint64   `json:"connected"`
	Refused   uint64   `json:"refused"`
	BytesIn   uint64   `json:"bytes_in"`
	BytesOut  uint64   `json:"bytes_out"`
	// RefusedReasons splits Refused by reason ("limit", "per_source",
	// "deny", "spawn", "connect", "proxy_header", "handoff",
	// "dynamic_user").
	RefusedReasons map[string]uint64 `json:"refused_reasons,omitempty"`
	// Exits counts ended instances by result ("success", "failure",
	// "signal").
	Exits     map[string]uint64 `json:"exits,omitempty"`
	Instances []InstanceStatus  `json:"instances"`
}

// InstanceStatus is one live connection of a service: for exec services a
// running process, for proxies a relayed connection (Pid 0).
type InstanceStatus struct {
	Name    string    `json:"name"`
	Pid     int       `json:"pid"`
	UID     int       `json:"uid"`
	GID     int       `json:"gid"`
	Remote  string    `json:"remote"`
	Local   string    `json:"local"`
	Started time.Time `json:"started"`
}

// ReloadResult is what a reload did, or why it was refused.
type ReloadResult struct {
	// Errors holds the configuration's problems, one
	// "FILE:LINE,COL: message" each, when the reload was refused; the old
	// configuration then keeps running.
	Errors    []string `json:"errors,omitempty"`
	Added     []string `json:"added,omitempty"`
	Removed   []string `json:"removed,omitempty"`
	Changed   []string `json:"changed,omitempty"`
	Unchanged []string `json:"unchanged,omitempty"`
}
