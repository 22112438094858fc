//go:build !linux

package activation

import (
	"errors"
	"fmt"
)

// Socket activation is a Linux protocol; elsewhere every inherited
// descriptor is refused rather than guessed at.

func inspect(fd int) (*Socket, error) {
	return nil, fmt.Errorf("fd %d: %w", fd, errors.New("inherited sockets are supported on Linux only"))
}

func openFDs() map[int]bool { return nil }

func openFileLimit() (uint64, bool) { return 0, false }

func closeFD(int) error { return nil }

func setCloexec(int) error { return nil }
