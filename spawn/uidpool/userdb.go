package uidpool

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// idFile is the set of ids (third field) of /etc/passwd or /etc/group,
// parsed again only when the file changes.
type idFile struct {
	path  string
	stamp unix.Stat_t // dev, ino, size, mtime of the parsed version
	ids   map[uint32]struct{}
	valid bool
}

func (f *idFile) has(id uint32) bool {
	_, ok := f.ids[id]
	return ok
}

func sameFile(a, b *unix.Stat_t) bool {
	return a.Dev == b.Dev && a.Ino == b.Ino && a.Size == b.Size && a.Mtim == b.Mtim && a.Ctim == b.Ctim
}

// refresh re-reads the file when it changed. A missing file is empty.
func (f *idFile) refresh() error {
	var st unix.Stat_t
	if err := unix.Stat(f.path, &st); err != nil {
		if err == unix.ENOENT {
			f.ids, f.valid = nil, false
			return nil
		}
		return fmt.Errorf("stat %s: %w", f.path, err)
	}
	if f.valid && sameFile(&st, &f.stamp) {
		return nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			f.ids, f.valid = nil, false
			return nil
		}
		return err
	}
	f.ids = parseIDs(b)
	f.stamp, f.valid = st, true
	return nil
}

// parseIDs collects the third ':'-separated field of every line: the UID
// of passwd(5) and the GID of group(5). NIS "+" lines and comments have
// none that parses and are skipped.
func parseIDs(b []byte) map[uint32]struct{} {
	ids := map[uint32]struct{}{}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		f := bytes.SplitN(line, []byte{':'}, 4)
		if len(f) < 4 {
			continue
		}
		if id, err := strconv.ParseUint(string(f[2]), 10, 32); err == nil {
			ids[uint32(id)] = struct{}{}
		}
	}
	return ids
}
