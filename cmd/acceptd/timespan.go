package main

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// timespanUnits are systemd's time span units (systemd.time(7)), plus
// Go's "ns". The first that prefixes the text is taken, so a unit comes
// before any shorter one it starts with ("msec" and "ms" before "m").
// Months and years are systemd's averages: 30.44 and 365.25 days.
var timespanUnits = []struct {
	name string
	d    time.Duration
}{
	{"seconds", time.Second}, {"second", time.Second}, {"sec", time.Second}, {"s", time.Second},
	{"minutes", time.Minute}, {"minute", time.Minute}, {"min", time.Minute},
	{"months", 2629800 * time.Second}, {"month", 2629800 * time.Second}, {"M", 2629800 * time.Second},
	{"msec", time.Millisecond}, {"ms", time.Millisecond}, {"m", time.Minute},
	{"hours", time.Hour}, {"hour", time.Hour}, {"hr", time.Hour}, {"h", time.Hour},
	{"days", 24 * time.Hour}, {"day", 24 * time.Hour}, {"d", 24 * time.Hour},
	{"weeks", 7 * 24 * time.Hour}, {"week", 7 * 24 * time.Hour}, {"w", 7 * 24 * time.Hour},
	{"years", 31557600 * time.Second}, {"year", 31557600 * time.Second}, {"y", 31557600 * time.Second},
	{"usec", time.Microsecond}, {"us", time.Microsecond}, {"µs", time.Microsecond}, {"μs", time.Microsecond},
	{"nsec", time.Nanosecond}, {"ns", time.Nanosecond},
}

var errTimespan = errors.New(`not a time span; write seconds ("30") or a span such as "5min 20s", "1h30m", "500ms" or "infinity"`)

// parseTimespan parses a time span the way systemd does (parse_sec),
// which is what systemd-socket-proxyd's --exit-idle-time= takes: one or
// more numbers, each with an optional fraction and unit ("30", "2.5s",
// "5min 20s", "1h30m"), a number without a unit being seconds; or
// "infinity", for which forever is true. Go's duration syntax is a subset.
func parseTimespan(s string) (d time.Duration, forever bool, err error) {
	s = strings.TrimSpace(s)
	if s == "infinity" {
		return 0, true, nil
	}
	if s == "" {
		return 0, false, errTimespan
	}
	var total time.Duration
	for s != "" {
		// A number: digits, optionally a fraction.
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		whole, frac, _ := strings.Cut(s[:i], ".")
		if i == 0 || strings.Contains(frac, ".") || whole == "" && frac == "" {
			return 0, false, errTimespan
		}
		n := int64(0)
		if whole != "" {
			var err error
			if n, err = strconv.ParseInt(whole, 10, 64); err != nil {
				return 0, false, errTooLong
			}
		}
		f := 0.0
		if frac != "" {
			f, _ = strconv.ParseFloat("0."+frac, 64)
		}
		s = strings.TrimLeft(s[i:], " \t")
		unit := time.Second
		for _, u := range timespanUnits {
			if strings.HasPrefix(s, u.name) {
				unit, s = u.d, s[len(u.name):]
				break
			}
		}
		// The next number may follow at once ("1h30m") or after space,
		// but not after letters no unit took ("5mins").
		if s != "" && (s[0] < '0' || s[0] > '9') && s[0] != ' ' && s[0] != '\t' {
			return 0, false, errTimespan
		}
		s = strings.TrimLeft(s, " \t")
		// Whole units exactly; the fraction of one unit as a float.
		if time.Duration(n) > (math.MaxInt64-total)/unit-1 {
			return 0, false, errTooLong
		}
		total += time.Duration(n)*unit + time.Duration(f*float64(unit))
	}
	return total, false, nil
}

var errTooLong = errors.New(`time span too long; use "infinity" for no limit`)
