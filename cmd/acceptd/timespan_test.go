package main

import (
	"testing"
	"time"
)

// TestParseTimespan: --exit-idle-time= takes what systemd-socket-proxyd
// takes (systemd.time(7) spans), so a unit file's ExecStart line works
// unchanged with acceptd proxy in place of systemd-socket-proxyd.
func TestParseTimespan(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		forever bool
	}{
		{in: "30", want: 30 * time.Second},
		{in: "2.5", want: 2500 * time.Millisecond},
		{in: "0", want: 0},
		{in: "30s", want: 30 * time.Second},
		{in: "5min", want: 5 * time.Minute},
		{in: "5min 20s", want: 5*time.Minute + 20*time.Second},
		{in: " 5 min  20 sec ", want: 5*time.Minute + 20*time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "2h45m30.5s", want: 2*time.Hour + 45*time.Minute + 30500*time.Millisecond},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "500msec", want: 500 * time.Millisecond},
		{in: "300us", want: 300 * time.Microsecond},
		{in: "300µs", want: 300 * time.Microsecond},
		{in: "2 hours", want: 2 * time.Hour},
		{in: "1hr", want: time.Hour},
		{in: "1d", want: 24 * time.Hour},
		{in: "2 weeks", want: 14 * 24 * time.Hour},
		{in: "1M", want: 2629800 * time.Second},
		{in: "1y", want: 31557600 * time.Second},
		{in: "10ns", want: 10},
		{in: "infinity", forever: true},
	} {
		d, forever, err := parseTimespan(tc.in)
		if err != nil || d != tc.want || forever != tc.forever {
			t.Errorf("parseTimespan(%q) = %v, %v, %v; want %v, %v", tc.in, d, forever, err, tc.want, tc.forever)
		}
	}
	for _, in := range []string{"", " ", "-5", "5mins", "five", "5 parsecs", "1.2.3s", "s", "infinityx", "1000y"} {
		if d, forever, err := parseTimespan(in); err == nil {
			t.Errorf("parseTimespan(%q) = %v, %v, nil; want an error", in, d, forever)
		}
	}
}

// TestParseTimespanGoSyntax: every duration Go prints reads back exactly,
// however long (Go's syntax is a subset of systemd's).
func TestParseTimespanGoSyntax(t *testing.T) {
	for _, d := range []time.Duration{1, 999, time.Microsecond + 1, 1500 * time.Millisecond,
		90*time.Minute + 1, 200 * 24 * time.Hour, 1<<63 - 1 - time.Hour} {
		got, _, err := parseTimespan(d.String())
		if err != nil || got != d {
			t.Errorf("parseTimespan(%q) = %v, %v; want %v", d.String(), got, err, d)
		}
	}
}
