package integration

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acceptd/acceptd/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// runSplit runs acceptd with args (from the test's directory, so that
// paths in its output are as given) and returns the exit status, stdout
// and stderr.
func runSplit(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(acceptdBin(), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("acceptd %v did not finish within 60s", args)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("acceptd %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestCheckGolden: `acceptd check` reports every mistake of a file at
// once, sorted, as FILE:LINE,COL: message, exits 1 and binds nothing;
// `acceptd run` on the same file prints the same and exits 1.
func TestCheckGolden(t *testing.T) {
	const cfg = "testdata/check-mistakes.hcl"
	golden := "testdata/check-mistakes.golden"
	code, stdout, stderr := runSplit(t, "check", "-config", cfg)
	if code != 1 || stdout != "" {
		t.Errorf("acceptd check on mistakes: exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	if *update {
		if err := os.WriteFile(golden, []byte(stderr), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestCheckGolden -update to create it)", err)
	}
	if stderr != string(want) {
		t.Errorf("acceptd check printed:\n%s\nwant (%s):\n%s", stderr, golden, want)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) < 15 {
		t.Errorf("only %d diagnostics; every mistake should be reported at once", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, cfg+":") {
			t.Errorf("diagnostic %q is not FILE:LINE,COL: message", l)
		}
	}

	code, stdout, runErr := runSplit(t, "run", "-config", cfg)
	if code != 1 || stdout != "" || runErr != string(want) {
		t.Errorf("acceptd run on mistakes: exit %d, stdout %q, stderr:\n%s\nwant 1, nothing, and the same diagnostics as check", code, stdout, runErr)
	}
	// The file listens on ports 7001-7006: none may have been bound.
	for p := 7001; p <= 7006; p++ {
		mustBeFree(t, fmt.Sprintf("127.0.0.1:%d", p))
	}
}

// TestCheckExitCodes: 0 valid, 1 invalid or unreadable, 2 usage.
func TestCheckExitCodes(t *testing.T) {
	if _, err := os.Lstat("/tmp/acceptd-check"); err == nil {
		t.Skip("/tmp/acceptd-check exists; cannot check that acceptd check creates nothing")
	}
	code, stdout, stderr := runSplit(t, "check", "-config", "testdata/check-valid.hcl")
	if code != 0 || stdout != "testdata/check-valid.hcl: valid (1 services)\n" || stderr != "" {
		t.Errorf("valid config: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	if _, err := os.Lstat("/tmp/acceptd-check"); err == nil {
		os.RemoveAll("/tmp/acceptd-check")
		t.Error("acceptd check created /tmp/acceptd-check: it must bind nothing")
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"check", "-config", "testdata/no-such-file.hcl"}, 1},
		{[]string{"check", "--config=testdata/check-valid.hcl"}, 0},
		{[]string{"check", "-config", "testdata/check-valid.hcl", "extra"}, 2},
		{[]string{"check", "-no-such-flag"}, 2},
		{[]string{"run", "-no-such-flag"}, 2},
		{[]string{"run", "-config", "testdata/no-such-file.hcl"}, 1},
		{[]string{}, 2},
		{[]string{"no-such-command"}, 2},
		{[]string{"version"}, 0},
		{[]string{"exec"}, 2},
		{[]string{"exec", "-listen", "127.0.0.1:7008"}, 2},
		{[]string{"exec", "-listen", "127.0.0.1:99999", "--", "/bin/cat"}, 1},
	} {
		code, stdout, stderr := runSplit(t, tc.args...)
		if code != tc.code {
			t.Errorf("acceptd %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), code, tc.code, stdout, stderr)
		}
	}
}

// TestExecCommand: `acceptd exec -listen ADDR -- COMMAND ARGS` runs one
// per-connection service without a configuration file.
func TestExecCommand(t *testing.T) {
	dir := testutil.ShortDir(t)
	sock := filepath.Join(dir, "exec.sock")
	port := freePort(t)
	tcp := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(acceptdBin(), "exec", "-listen", sock, "-listen", tcp, "-max-connections", "1",
		"--", "/bin/sh", "-c", `echo "$ACCEPTD_SERVICE $PROTO $1"; cat`, "sh", "arg one")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A killed acceptd may leave children holding its output pipe.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("acceptd exec output:\n%s", out.String())
		}
	}()
	// Until acceptd listens, and while the probe's own instance still
	// holds the only slot, a request fails; then it works.
	var got string
	testutil.WaitFor(t, startTimeout, "acceptd exec to serve on "+sock, func() bool {
		var err error
		got, err = tryRequest(sock, "ping\n")
		return err == nil && got != ""
	})
	if got != "exec UNIX arg one\nping\n" {
		t.Errorf("over UNIX: got %q", got)
	}
	// The UNIX instance may still hold the one slot for a moment.
	var c net.Conn
	var line string
	testutil.WaitFor(t, 20*time.Second, "a TCP connection to be served", func() bool {
		var err error
		c, err = net.DialTimeout("tcp", tcp, 5*time.Second)
		if err != nil {
			return false
		}
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		line, err = bufio.NewReader(c).ReadString('\n')
		if err != nil {
			c.Close()
			return false
		}
		return true
	})
	defer c.Close()
	if line != "exec TCP arg one\n" {
		t.Errorf("over TCP: got %q", line)
	}
	// -max-connections 1: a second client is refused while c is open.
	c2, err := net.DialTimeout("tcp", tcp, 10*time.Second)
	if err == nil {
		c2.SetReadDeadline(time.Now().Add(20 * time.Second))
		var b [64]byte
		n, rerr := c2.Read(b[:])
		if n > 0 {
			t.Errorf("-max-connections 1: a second client got %q", b[:n])
		}
		if errors.Is(rerr, os.ErrDeadlineExceeded) {
			t.Error("-max-connections 1: a second client was neither served nor closed")
		}
		c2.Close()
	}
	c.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("acceptd exec after SIGTERM: %v", waitErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("acceptd exec did not stop after SIGTERM\n%s", out.String())
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left behind: %v", sock, err)
	}
}

// tryRequest is request without failing the test: for polling.
func tryRequest(addr, in string) (string, error) {
	c, err := net.DialTimeout("unix", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte(in)); err != nil {
		return "", err
	}
	c.(*net.UnixConn).CloseWrite()
	var b bytes.Buffer
	_, err = b.ReadFrom(c)
	return b.String(), err
}

// TestExamplesCheck: every configuration in examples/ is valid.
func TestExamplesCheck(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(bins.root, "examples", "*.hcl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, peer := range []string{"busybox", "git"} {
				if strings.Contains(string(src), `["`+peer+`"`) {
					testutil.RequirePeer(t, peer)
				}
			}
			if strings.Contains(string(src), `user `) {
				testutil.RequireRoot(t)
			}
			code, stdout, stderr := runSplit(t, "check", "-config", f)
			if code != 0 {
				t.Errorf("acceptd check %s: exit %d\n%s%s", f, code, stdout, stderr)
			}
		})
	}
}
