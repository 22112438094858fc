package main

import (
	"path/filepath"
	"testing"

	"github.com/acceptd/acceptd/server"
)

func TestReloadApplied(t *testing.T) {
	for _, tc := range []struct {
		res  server.ReloadResult
		want string
	}{
		{server.ReloadResult{Added: []string{"a", "b"}, Removed: []string{"c"}, Changed: []string{"d"}, Unchanged: []string{"e"}},
			"reloaded: added a, b; removed c; changed d\n"},
		{server.ReloadResult{Changed: []string{"d"}}, "reloaded: changed d\n"},
		{server.ReloadResult{Unchanged: []string{"e"}}, "reloaded: no changes\n"},
		{server.ReloadResult{}, "reloaded: no changes\n"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			sock := startControl(t, &ctlBackend{res: tc.res})
			code, out, errOut := run(reload, "-control", sock)
			if code != 0 || out != tc.want || errOut != "" {
				t.Errorf("reload of %+v: exit %d, stdout %q, stderr %q; want 0 and %q", tc.res, code, out, errOut, tc.want)
			}
		})
	}
}

func TestReloadRefused(t *testing.T) {
	sock := startControl(t, &ctlBackend{res: server.ReloadResult{Errors: []string{
		"/etc/acceptd/acceptd.hcl:3,5: Unsupported argument; An argument named \"lisen\" is not expected here.",
		"/etc/acceptd/acceptd.hcl:9,1: Missing command",
	}}})
	code, out, errOut := run(reload, "--control", sock)
	want := "acceptd: reload refused; the running configuration is kept:\n" +
		"/etc/acceptd/acceptd.hcl:3,5: Unsupported argument; An argument named \"lisen\" is not expected here.\n" +
		"/etc/acceptd/acceptd.hcl:9,1: Missing command\n"
	if code != 1 || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant 1 and:\n%s", code, out, errOut, want)
	}
}

func TestReloadNoDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "control.sock")
	code, _, errOut := run(reload, "-control", sock)
	if want := "acceptd: cannot reach the control socket " + sock + ": no such file or directory\n"; code != 1 || errOut != want {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, want)
	}
}

func TestReloadUsage(t *testing.T) {
	for _, args := range [][]string{{"-bogus"}, {"extra"}, {"-control"}} {
		if code, _, errOut := run(reload, args...); code != 2 || errOut == "" {
			t.Errorf("reload %v: exit %d, stderr %q; want 2 and a message", args, code, errOut)
		}
	}
}
