package integration

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acceptd/acceptd/internal/testutil"
)

// TestReload (CONTRACT: Lifecycle): `acceptd reload` and SIGHUP read the
// file again. A file with errors is refused as a whole and printed; the
// old configuration keeps serving. A good one keeps unchanged services'
// sockets and running instances, adds and removes services, and says so.
func TestReload(t *testing.T) {
	d := startDaemon(t, `
service "keep" {
  listen = ["{{DIR}}/keep.sock"]
  exec {
    `+prog("greet")+`
  }
}

service "gone" {
  listen = ["{{DIR}}/gone.sock"]
  builtin = "echo"
}
`, daemonOpts{})
	keep := d.dir + "/keep.sock"
	held, err := net.Dial("unix", keep)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if !greeted(t, held) {
		t.Fatal("keep: not served")
	}

	reload := func() (string, int) {
		t.Helper()
		out, err := exec.Command(acceptdBin(), "reload", "-control", d.control).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	head, err := os.ReadFile(d.config)
	if err != nil {
		t.Fatal(err)
	}
	prefix := string(head[:strings.Index(string(head), `service "keep"`)])

	// A file with a mistake: refused, printed with its line, nothing changes.
	os.WriteFile(d.config, []byte(prefix+`
service "keep" {
  listen = ["`+keep+`"]
  exec {
    `+prog("greet")+`
    stop_timeout = "soon"
  }
}
`), 0o644)
	out, code := reload()
	if code != 1 || !strings.Contains(out, "acceptd.hcl:") || !strings.Contains(out, "stop_timeout") {
		t.Errorf("reload of a bad file: exit %d, output:\n%s", code, out)
	}
	if c, err := net.Dial("unix", d.dir+"/gone.sock"); err != nil {
		t.Errorf("old configuration stopped serving after a refused reload: %v", err)
	} else {
		c.Close()
	}

	// A good file: gone removed, fresh added, keep unchanged.
	os.WriteFile(d.config, []byte(prefix+`
service "keep" {
  listen = ["`+keep+`"]
  exec {
    `+prog("greet")+`
  }
}

service "fresh" {
  listen = ["`+d.dir+`/fresh.sock"]
  builtin = "echo"
}
`), 0o644)
	out, code = reload()
	if code != 0 || !strings.Contains(out, "added fresh") || !strings.Contains(out, "removed gone") {
		t.Errorf("reload: exit %d, output:\n%s", code, out)
	}
	if _, err := os.Lstat(d.dir + "/gone.sock"); !os.IsNotExist(err) {
		t.Errorf("removed service's socket still there: %v", err)
	}
	c, err := net.Dial("unix", d.dir+"/fresh.sock")
	if err != nil {
		t.Fatalf("added service not listening: %v", err)
	}
	c.Close()
	// The instance started before the reload is still running and its
	// count is the same service's.
	if s := d.service("keep"); s.Connected != 1 || s.Accepted != 1 {
		t.Errorf("keep after reload: %+v; want the held instance", s)
	}
	held.Close()

	// SIGHUP does the same as acceptd reload.
	os.WriteFile(d.config, []byte(prefix+`
service "keep" {
  listen = ["`+keep+`"]
  exec {
    `+prog("greet")+`
  }
}
`), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	if !testutil.Poll(10*time.Second, func() bool {
		_, err := os.Lstat(d.dir + "/fresh.sock")
		return os.IsNotExist(err)
	}) {
		t.Error("SIGHUP did not apply the file")
	}
	d.stop(keep)
}
