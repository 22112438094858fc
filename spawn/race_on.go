//go:build race

package spawn

// raceEnabled: built with the race detector, whose instrumentation (in
// the ABI wrapper of childRun) cannot run in a child beside the parent;
// Spec.NoExecWait then waits for the exec as without it.
const raceEnabled = true
