package config

import (
	"fmt"
	"strconv"
)

// fakeLookup is a hermetic user database and $PATH for tests.
type fakeLookup struct{}

var fakeUsers = map[string]UserSpec{
	"helloworld": {UID: 1001, GID: 1001, Groups: []uint32{1001}, Home: "/home/helloworld"},
	"foobar":     {UID: 1002, GID: 1002, Groups: []uint32{1002, 27}, Home: "/home/foobar"},
	"www-data":   {UID: 33, GID: 33, Groups: []uint32{33}, Home: "/var/www"},
}

var fakeGroups = map[string]uint32{"helloworld": 1001, "foobar": 1002, "www-data": 33, "sudo": 27}

// fakePrograms are the commands fakeLookup knows, by first word.
var fakePrograms = map[string]string{
	"/opt/octoi-helloworld.sh": "/opt/octoi-helloworld.sh",
	"/usr/sbin/nginx":          "/usr/sbin/nginx",
	"/usr/sbin/in.tftpd":       "/usr/sbin/in.tftpd",
	"/usr/sbin/sshd":           "/usr/sbin/sshd",
	"/bin/cat":                 "/bin/cat",
	"cat":                      "/bin/cat",
	"true":                     "/bin/true",
}

func (fakeLookup) User(name string) (*UserSpec, error) {
	if u, ok := fakeUsers[name]; ok {
		u.Name = name
		return &u, nil
	}
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return &UserSpec{Name: name, UID: uint32(n), GID: uint32(n)}, nil
	}
	return nil, fmt.Errorf("user: unknown user %s", name)
}

func (fakeLookup) Group(name string) (*GroupSpec, error) {
	if g, ok := fakeGroups[name]; ok {
		return &GroupSpec{Name: name, GID: g}, nil
	}
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return &GroupSpec{Name: name, GID: uint32(n)}, nil
	}
	return nil, fmt.Errorf("group: unknown group %s", name)
}

func (fakeLookup) LookPath(name string) (string, error) {
	if p, ok := fakePrograms[name]; ok {
		return p, nil
	}
	return "", fmt.Errorf("no such program")
}
