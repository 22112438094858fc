package integration

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// bins are the programs TestMain prepares; they are set once before any
// test runs and only read afterwards.
var bins struct {
	// acceptd is the daemon under test, built from ../cmd/acceptd; tests
	// name it through acceptdBin.
	acceptd string
	// noted opens the sources once (see acceptdBin).
	noted sync.Once
	// prog is a copy of this test binary in a directory every user can
	// read, so that children running as nobody can execute it.
	prog string
	// root is the repository root, the working directory README's
	// commands assume.
	root string
}

// progEnv selects the per-connection program mode of the test binary.
const progEnv = "ACCEPTD_TEST_PROG"

func TestMain(m *testing.M) {
	if mode := os.Getenv(progEnv); mode != "" {
		os.Exit(runProg(mode))
	}
	os.Exit(setupAndRun(m))
}

func setupAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "acceptd-it")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bins.root = root
	bins.acceptd = filepath.Join(dir, "acceptd")
	args := []string{"build", "-o", bins.acceptd}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/acceptd")
	build := exec.Command("go", args...)
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: go %v: %v\n", args, err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bins.prog = filepath.Join(dir, "prog")
	if err := copyFile(self, bins.prog, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// acceptdBin returns the path of the daemon under test. The first call
// opens every file the binary is built from: go test caches a package's
// result keyed on its own dependencies and on the files its tests opened
// (from m.Run on, hence not in TestMain); the binary is built by a child
// process it cannot see, so without this a change in server/ or cmd/
// would replay an old "ok".
func acceptdBin() string {
	bins.noted.Do(func() {
		if err := noteSources(bins.root); err != nil {
			fmt.Fprintf(os.Stderr, "integration: noting the sources for the test cache: %v\n", err)
		}
	})
	return bins.acceptd
}

func noteSources(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if name := d.Name(); !d.IsDir() && (strings.HasSuffix(name, ".go") || name == "go.mod" || name == "go.sum") {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			f.Close()
		}
		return nil
	})
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Close()
}
