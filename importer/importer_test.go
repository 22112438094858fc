package importer

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/acceptd/acceptd/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.hcl and *.problems from the current output")

func testServices(t *testing.T) *Services {
	t.Helper()
	data, err := os.ReadFile("testdata/services")
	if err != nil {
		t.Fatal(err)
	}
	return ParseServices(data)
}

// inputs reads a golden case: a file, or a directory whose files are
// taken in name order (as xinetd reads an includedir).
func inputs(t *testing.T, path string) []File {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{path}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			t.Fatal(err)
		}
		paths = nil
		for _, e := range entries {
			paths = append(paths, filepath.Join(path, e.Name()))
		}
	}
	var files []File
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, File{Name: filepath.ToSlash(p), Data: data})
	}
	return files
}

// TestGolden translates every testdata/*.conf (inetd) and *.xinetd or
// *.xinetd.d (xinetd) and compares with the .hcl beside it, and the
// problems with the .problems file (absent when there are none). Every
// output must be a valid acceptd configuration.
func TestGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, path := range cases {
		var translate func([]File, Options) *output
		var kind string
		switch {
		case strings.HasSuffix(path, ".conf"):
			translate, kind = inetd, "inetd"
		case strings.HasSuffix(path, ".xinetd"), strings.HasSuffix(path, ".xinetd.d"):
			translate, kind = xinetd, "xinetd"
		default:
			continue
		}
		n++
		t.Run(filepath.Base(path), func(t *testing.T) {
			o := translate(inputs(t, path), Options{Services: testServices(t), Command: "acceptd import " + kind})
			res := o.result()
			var probs strings.Builder
			for _, p := range res.Problems {
				probs.WriteString(p.String() + "\n")
			}
			golden(t, path+".hcl", string(res.HCL))
			golden(t, path+".problems", probs.String())

			if _, diags := config.Parse(path+".hcl", res.HCL, config.AsWritten()); diags.HasErrors() {
				t.Errorf("the translation is not a valid configuration:\n%s", formatDiags(diags))
			}
			checkDisabled(t, o)
		})
	}
	if n < 5 {
		t.Fatalf("found %d golden cases; want at least 5", n)
	}
}

// checkDisabled checks that each service written commented out is, on
// its own, a valid configuration once uncommented, except where a note
// says the user has to write an address the importer could not know.
func checkDisabled(t *testing.T, o *output) {
	t.Helper()
	for _, e := range o.entries {
		if e.svc == nil || !e.off {
			continue
		}
		if slices.ContainsFunc(e.notes, func(n string) bool {
			return strings.Contains(n, "names are not resolved") || strings.HasPrefix(n, refusedNote)
		}) {
			continue // it may still hold the name, or what acceptd refuses
		}
		if _, diags := config.Parse(e.svc.name+".hcl", e.svc.render(), config.AsWritten()); diags.HasErrors() {
			t.Errorf("service %q uncommented is not valid (notes %q):\n%s", e.svc.name, e.notes, formatDiags(diags))
		}
	}
}

func formatDiags(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		b.WriteString(config.FormatDiagnostic(d) + "\n")
	}
	return b.String()
}

// golden compares got with the file at path; an empty got means the file
// must not exist.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if got == "" {
			if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			return
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if os.IsNotExist(err) && got == "" {
		return
	}
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run go test -update to accept):\n%s", path, diffLines(string(want), got))
	}
}

// diffLines shows the first lines where want and got differ.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n want: " + wl + "\n  got: " + gl
		}
	}
	return "(no line differs)"
}
