//go:build !race

package spawn

// raceEnabled: see race_on.go.
const raceEnabled = false
