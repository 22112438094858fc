package importer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/acceptd/acceptd/config"
)

// fuzzSeeds adds the golden inputs to a fuzz corpus.
func fuzzSeeds(f *testing.F, patterns ...string) {
	f.Helper()
	for _, pattern := range patterns {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
}

// fuzzTranslate checks that no input makes the importer panic or write
// a configuration acceptd refuses.
func fuzzTranslate(f *testing.F, translate func([]File, Options) Result) {
	services, err := os.ReadFile("testdata/services")
	if err != nil {
		f.Fatal(err)
	}
	opt := Options{Services: ParseServices(services)}
	f.Fuzz(func(t *testing.T, data []byte) {
		res := translate([]File{{Name: "in", Data: data}}, opt)
		if _, diags := config.Parse("out.hcl", res.HCL, config.AsWritten()); diags.HasErrors() {
			t.Fatalf("invalid output for %q:\n%s\n%s", data, formatDiags(diags), res.HCL)
		}
	})
}

func FuzzInetd(f *testing.F) {
	fuzzSeeds(f, "testdata/*.conf")
	f.Add([]byte("echo stream tcp nowait.99999999999 root internal\n"))
	fuzzTranslate(f, Inetd)
}

func FuzzXinetd(f *testing.F) {
	fuzzSeeds(f, "testdata/*.xinetd", "testdata/*.xinetd.d/*")
	f.Add([]byte("service x\n{\nport = 1\ntype = UNLISTED\nsocket_type = stream\nwait = no\nserver = /x\nrlimit_as = 99999999999999999999T\ninstances = 99999999999\n}\n"))
	fuzzTranslate(f, Xinetd)
}
