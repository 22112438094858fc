package config_test

import (
	"fmt"

	"github.com/acceptd/acceptd/config"
)

// Parse reports every mistake at once; sorted and formatted they are what
// `acceptd check` prints.
func ExampleParse() {
	src := `
service "hello" {
  listen = ["31337", "[::]:31337"]
  exec {
    command      = ["/bin/sh", "-c", "echo hello"]
    stop_timeout = "5"
  }
}
`
	cfg, diags := config.Parse("hello.hcl", []byte(src), nil)
	fmt.Println(cfg == nil)
	for _, line := range config.Errors(diags) {
		fmt.Println(line)
	}
	// Output:
	// true
	// hello.hcl:3,22: Duplicate listen address: "[::]:31337" is the same socket as service "hello" at hello.hcl:3,13.
	// hello.hcl:6,20: Invalid duration: stop_timeout = "5" is not a duration; use Go syntax such as "500ms", "5s" or "10m".
}
