package sockfile

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/acceptd/acceptd/internal/testutil"
)

func TestClearStale(t *testing.T) {
	dir := testutil.ShortDir(t)
	missing := filepath.Join(dir, "missing")
	regular, live, stale := testutil.SocketFiles(t, dir)
	liveGram := filepath.Join(dir, "live.dgram")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: liveGram, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	for _, tc := range []struct {
		path, network string
		wantErr       bool
		wantGone      bool
	}{
		{missing, "unix", false, true},
		{regular, "unix", true, false},
		{live, "unix", true, false},
		{liveGram, "unixgram", true, false},
		{liveGram, "unix", true, false}, // the other type: not ours to remove
		{stale, "unix", false, true},
	} {
		err := ClearStale(tc.path, tc.network)
		if (err != nil) != tc.wantErr {
			t.Errorf("ClearStale(%s, %s) = %v; want error %v", filepath.Base(tc.path), tc.network, err, tc.wantErr)
		}
		_, serr := os.Lstat(tc.path)
		if gone := os.IsNotExist(serr); gone != tc.wantGone {
			t.Errorf("ClearStale(%s, %s): removed = %v; want %v", filepath.Base(tc.path), tc.network, gone, tc.wantGone)
		}
	}
	if err := ClearStale(live, "unix"); !errors.Is(err, ErrLive) {
		t.Errorf("live socket: %v; want ErrLive", err)
	}
}
