package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acceptd/acceptd/internal/testutil"
)

// TestBusyboxHttpd serves a file with `busybox httpd -i`, an inetd-mode
// web server, and fetches it with net/http.
func TestBusyboxHttpd(t *testing.T) {
	busybox := testutil.RequirePeer(t, "busybox")
	www := testutil.ShortDir(t)
	body := "served by busybox through acceptd\n"
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, fmt.Sprintf(`
service "httpd" {
  listen = ["127.0.0.1:{{PORT}}"]
  exec {
    command = [%q, "httpd", "-i", "-h", %q]
    stderr  = "null"
  }
}
`, busybox, www), daemonOpts{})
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 3; i++ {
		resp, err := client.Get(fmt.Sprintf("http://%s/index.html", d.addr(0)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(got) != body {
			t.Errorf("GET /index.html: %s %q %v", resp.Status, got, err)
		}
	}
	resp, err := client.Get(fmt.Sprintf("http://%s/missing", d.addr(0)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /missing: %s, want 404", resp.Status)
	}
	d.stop()
}

// TestGitDaemon serves a repository with `git daemon --inetd` and clones
// it with `git clone git://`.
func TestGitDaemon(t *testing.T) {
	git := testutil.RequirePeer(t, "git")
	base := testutil.ShortDir(t)
	home := testutil.ShortDir(t)
	env := append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid")
	run := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command(git, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	work := filepath.Join(base, "work")
	run(base, "init", "-q", "-b", "main", work)
	if err := os.WriteFile(filepath.Join(work, "README"), []byte("cloned through acceptd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(work, "add", "README")
	run(work, "commit", "-q", "-m", "first")
	run(base, "clone", "-q", "--bare", work, filepath.Join(base, "repo.git"))

	d := startDaemon(t, fmt.Sprintf(`
service "git" {
  listen = ["127.0.0.1:{{PORT}}"]
  exec {
    command     = [%q, "daemon", "--inetd", "--export-all", "--base-path=%s"]
    environment = { HOME = %q, GIT_CONFIG_NOSYSTEM = "1", GIT_CONFIG_GLOBAL = "/dev/null" }
  }
}
`, git, base, home), daemonOpts{})
	out := filepath.Join(home, "clone")
	run(home, "clone", "-q", fmt.Sprintf("git://%s/repo.git", d.addr(0)), out)
	got, err := os.ReadFile(filepath.Join(out, "README"))
	if err != nil || string(got) != "cloned through acceptd\n" {
		t.Errorf("cloned README: %q, %v", got, err)
	}
	d.stop()
}
