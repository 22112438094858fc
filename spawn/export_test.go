package spawn

// HelperArg lets TestMain tell the helper from a test program: both have
// the test program's environment.
const HelperArg = helperArg

// RaceEnabled reports a build with the race detector (see race_on.go).
const RaceEnabled = raceEnabled
