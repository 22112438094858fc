package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary files to Parse: it must never panic, every
// diagnostic must have a place, and a Config comes back exactly when
// there is no error.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.hcl")
	for _, p := range seeds {
		src, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte(`service "x" { listen = [1] builtin = "echo" }`))
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, diags := Parse("fuzz.hcl", src, fakeLookup{})
		if diags.HasErrors() != (cfg == nil) {
			t.Fatalf("HasErrors %v but Config %v", diags.HasErrors(), cfg)
		}
		for _, d := range diags {
			if d.Subject == nil {
				t.Fatalf("diagnostic without a subject: %s", FormatDiagnostic(d))
			}
			_ = FormatDiagnostic(d)
		}
		if cfg == nil {
			return
		}
		for _, s := range cfg.Services {
			if len(s.Listen) == 0 {
				t.Fatalf("service %q without listen addresses", s.Name)
			}
			n := 0
			for _, set := range []bool{s.Exec != nil, s.Proxy != nil, s.Handoff != nil, s.Builtin != ""} {
				if set {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("service %q has %d modes", s.Name, n)
			}
		}
	})
}
