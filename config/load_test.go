package config

import (
	"testing"
)

func TestLoadContract(t *testing.T) {
	cfg, diags := Load("testdata/valid/contract.hcl", fakeLookup{})
	for _, e := range Errors(diags) {
		t.Error(e)
	}
	if cfg == nil {
		t.Fatal("no config")
	}
	t.Logf("%+v", cfg)
	for _, s := range cfg.Services {
		t.Logf("%+v", s)
	}
}
