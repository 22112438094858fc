package config

import (
	"math"
	"os"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// defaultStopTimeout is how long a child gets between SIGTERM and
// SIGKILL: systemd's TimeoutStopSec= is longer (90s), but a
// per-connection program that ignores SIGTERM for 5s is not going to
// finish anything useful.
const defaultStopTimeout = 5 * time.Second

func (d *decoder) exec(fe *fileExec, s *Service) (*Exec, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	add := func(more hcl.Diagnostics) { diags = append(diags, more...) }
	e := &Exec{}

	var more hcl.Diagnostics
	e.Command, more = d.command(fe.Command, fe.DefRange)
	add(more)
	e.Accept = boolOr(fe.Accept, true)
	var pass string
	pass, more = oneOf(fe.Pass, fe.PassRange, "pass", string(PassStdin), string(PassStdin), string(PassListenFDs))
	add(more)
	e.Pass = Pass(pass)
	e.IgnoreExitStatus = boolOr(fe.IgnoreExitStatus, false)
	var stderr string
	stderr, more = oneOf(fe.Stderr, fe.StderrRange, "stderr", string(StderrLog),
		string(StderrLog), string(StderrNull), string(StderrSocket), string(StderrInherit))
	add(more)
	e.Stderr = Stderr(stderr)

	e.DynamicUser = boolOr(fe.DynamicUser, false)
	if fe.User != nil {
		if e.DynamicUser {
			add(hcl.Diagnostics{diagf(fe.UserRange, "Conflicting user settings",
				"user and dynamic_user = true exclude each other: a dynamic user is a fresh UID per instance.")})
		} else {
			e.User, more = d.user(*fe.User, fe.UserRange, "user")
			add(more)
		}
	}
	if fe.Group != nil {
		if e.DynamicUser {
			add(hcl.Diagnostics{diagf(fe.GroupRange, "Conflicting group settings",
				"group and dynamic_user = true exclude each other: a dynamic user gets a fresh GID equal to its UID.")})
		} else {
			e.Group, more = d.group(*fe.Group, fe.GroupRange, "group")
			add(more)
		}
	}
	// A dynamic user must not be able to gain privileges through a setuid
	// binary: that would defeat the point of a throwaway UID.
	e.NoNewPrivileges = boolOr(fe.NoNewPrivileges, e.DynamicUser)
	if e.DynamicUser && !e.NoNewPrivileges {
		add(hcl.Diagnostics{diagf(fe.NoNewPrivilegesRange, "Conflicting privilege settings",
			"no_new_privileges = false is not possible with dynamic_user = true, which implies it.")})
	}

	e.Environment, more = environment(fe.Environment, fe.EnvironmentRange)
	add(more)
	e.WorkingDirectory, more = absPath(fe.WorkingDirectory, fe.WorkingDirectoryRange, "working_directory")
	add(more)
	e.RuntimeMax, more = duration(fe.RuntimeMax, fe.RuntimeMaxRange, "runtime_max", 0)
	add(more)
	e.StopTimeout, more = duration(fe.StopTimeout, fe.StopTimeoutRange, "stop_timeout", defaultStopTimeout)
	add(more)
	if fe.Umask != nil {
		m, more := octalMode(*fe.Umask, fe.UmaskRange, "umask", 0o777)
		add(more)
		if more == nil {
			um := os.FileMode(m)
			e.Umask = &um
		}
	}
	e.Chroot, more = absPath(fe.Chroot, fe.ChrootRange, "chroot")
	add(more)
	e.PrivateTmp = boolOr(fe.PrivateTmp, false)
	e.PrivateNetwork = boolOr(fe.PrivateNetwork, false)
	e.TasksMax, more = intIn(fe.TasksMax, fe.TasksMaxRange, "tasks_max", 0, 1, math.MaxInt32)
	add(more)
	if fe.MemoryMax != nil {
		n, ok := byteSize(*fe.MemoryMax)
		if !ok || n == 0 {
			add(hcl.Diagnostics{diagf(fe.MemoryMaxRange, "Invalid size",
				"memory_max = %q; want a number of bytes above 0, optionally with a K, M, G or T suffix, such as \"512M\".", *fe.MemoryMax)})
		}
		e.MemoryMax = n
	}
	if fe.Limits != nil {
		e.Limits, more = limits(fe.Limits)
		add(more)
	}

	// accept = false hands the listening socket itself to one program.
	if !e.Accept && e.Pass == PassStdin && len(s.Listen) > 1 {
		add(hcl.Diagnostics{diagf(fe.DefRange, "Too many listen addresses",
			"with accept = false and pass = \"stdin\" the program gets one socket on stdin, but service %q has %d listen addresses; use pass = \"listen_fds\".",
			s.Name, len(s.Listen))})
	}
	return e, diags
}
