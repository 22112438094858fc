package config

import (
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
)

// Lookup resolves the user and group names a configuration mentions. It is
// how the package asks the host, so that tests can stay hermetic: `acceptd
// run` and `acceptd check` pass [OSLookup], tests pass a fake.
//
// A nil Lookup skips the user database altogether: numbers are taken as
// IDs (a user's GID then equals its UID, with no supplementary groups),
// and names are accepted unchecked and left unresolved (only Name is set,
// the IDs are zero). Such a Config is for syntax checks and tests; it must
// not be run.
type Lookup interface {
	// User resolves a user name or a decimal UID.
	User(name string) (*UserSpec, error)
	// Group resolves a group name or a decimal GID.
	Group(name string) (*GroupSpec, error)
}

// PathLookup is implemented by a Lookup that also resolves commands. When
// the Lookup passed to [Load] or [Parse] does not implement it (or is nil),
// commands are resolved on the host: a bare name through $PATH of the
// loading process, an absolute path by checking that it is an executable
// file. Tests implement it to accept commands the host does not have.
type PathLookup interface {
	// LookPath returns the absolute path of the program a command's
	// first word names, or an error saying why there is none.
	LookPath(name string) (string, error)
}

// AsWritten returns a Lookup that takes every user, group and program as
// written and resolves nothing (names only, IDs zero, a command's first
// word as its path): for checking a configuration's form apart from the
// host it is meant for, such as the importer's output. Such a Config must
// not be run.
func AsWritten() Lookup { return asWritten{} }

type asWritten struct{}

func (asWritten) User(name string) (*UserSpec, error)   { return &UserSpec{Name: name}, nil }
func (asWritten) Group(name string) (*GroupSpec, error) { return &GroupSpec{Name: name}, nil }
func (asWritten) LookPath(name string) (string, error)  { return name, nil }

var _ PathLookup = asWritten{}

// OSLookup returns the Lookup backed by the host's user and group
// databases (os/user) and its file system. Numbers are accepted where
// names are: a numeric UID with no passwd entry runs with GID equal to the
// UID and no supplementary groups, as systemd's User= does with a bare
// number. A user's supplementary groups are exactly those the group
// database lists for that user, so a child never keeps any of acceptd's.
func OSLookup() Lookup { return osLookup{} }

type osLookup struct{}

func (osLookup) User(name string) (*UserSpec, error) {
	var u *user.User
	var err error
	if id, ok := parseID(name); ok {
		u, err = user.LookupId(name)
		var unknown user.UnknownUserIdError
		if errors.As(err, &unknown) {
			return &UserSpec{Name: name, UID: id, GID: id}, nil
		}
	} else {
		u, err = user.Lookup(name)
	}
	if err != nil {
		return nil, err
	}
	uid, ok1 := parseID(u.Uid)
	gid, ok2 := parseID(u.Gid)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("user %q has a non-numeric uid %q or gid %q", name, u.Uid, u.Gid)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("supplementary groups of %q: %w", name, err)
	}
	spec := &UserSpec{Name: name, UID: uid, GID: gid, Home: u.HomeDir}
	for _, g := range gids {
		if n, ok := parseID(g); ok {
			spec.Groups = append(spec.Groups, n)
		}
	}
	return spec, nil
}

func (osLookup) Group(name string) (*GroupSpec, error) {
	if id, ok := parseID(name); ok {
		// A bare GID needs no group entry: setgid takes any number.
		return &GroupSpec{Name: name, GID: id}, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return nil, err
	}
	gid, ok := parseID(g.Gid)
	if !ok {
		return nil, fmt.Errorf("group %q has a non-numeric gid %q", name, g.Gid)
	}
	return &GroupSpec{Name: name, GID: gid}, nil
}

func (osLookup) LookPath(name string) (string, error) { return hostLookPath(name) }

// hostLookPath resolves a command's first word on this host.
func hostLookPath(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty program name")
	}
	if !filepath.IsAbs(name) && filepath.Base(name) != name {
		// "./x" or "bin/x" would depend on the daemon's working directory.
		return "", errors.New("a program must be an absolute path or a bare name found in $PATH")
	}
	p, err := exec.LookPath(name)
	if err != nil {
		// exec.Error repeats the name, which the diagnostic already has.
		var ee *exec.Error
		if errors.As(err, &ee) {
			return "", ee.Err
		}
		return "", err
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%s was found relative to the working directory; use an absolute path", p)
	}
	return p, nil
}

// parseID parses a decimal user or group ID. 4294967295 is (uid_t)-1,
// which setuid takes as "unchanged", so it is never an ID.
func parseID(s string) (uint32, bool) {
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, false
	}
	return uint32(n), true
}
