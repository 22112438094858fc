package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/acceptd/acceptd/config"
	"github.com/acceptd/acceptd/server"
	"github.com/acceptd/acceptd/server/notify"
)

// TestReloadReadyStatus: after a reload, READY=1 comes with a STATUS= line
// that counts the services of the new configuration, not of the old.
func TestReloadReadyStatus(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "acceptd.hcl")
	service := func(name string) string {
		return `service "` + name + `" {
  listen = ["127.0.0.1:0"]
  exec { command = ["/bin/true"] }
}
`
	}
	if err := os.WriteFile(path, []byte(service("one")), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(path, config.OSLookup())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	log := zaptest.NewLogger(t)
	srv, err := server.New(cfg, server.Options{Log: log, NoCgroups: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	sock := filepath.Join(dir, "notify")
	mgr, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	env := map[string]string{"NOTIFY_SOCKET": sock}
	n := notify.New(func(k string) string { return env[k] }, func(k string) error { delete(env, k); return nil }, os.Getpid())

	if err := os.WriteFile(path, []byte(service("one")+service("two")), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemon{srv: srv, log: log, path: path, notify: n}
	if res := d.Reload(ctx); len(res.Errors) != 0 {
		t.Fatalf("reload refused: %v", res.Errors)
	}
	var got []string
	buf := make([]byte, 4096)
	for len(got) < 2 {
		_ = mgr.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := mgr.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, string(buf[:k]))
	}
	if !strings.HasPrefix(got[0], "RELOADING=1") {
		t.Errorf("first datagram %q; want RELOADING=1", got[0])
	}
	if want := "READY=1\nSTATUS=serving 2 services on 2 sockets"; got[1] != want {
		t.Errorf("after the reload: %q; want %q", got[1], want)
	}
}
