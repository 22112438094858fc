//go:build race

package integration

// raceEnabled builds acceptd with -race when the tests run with -race, so
// that the daemon's own data races show up in the integration tests too.
const raceEnabled = true
