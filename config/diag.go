package config

import (
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
)

// FormatDiagnostic renders one diagnostic as `acceptd check` prints it:
// exactly "FILE:LINE,COL: summary: detail", or "FILE:LINE,COL: summary"
// when there is no detail. A diagnostic without a position (a file that
// cannot be read) drops the LINE,COL part, and one without a subject
// drops the FILE part as well.
func FormatDiagnostic(d *hcl.Diagnostic) string {
	msg := d.Summary
	if d.Detail != "" {
		msg += ": " + d.Detail
	}
	switch {
	case d.Subject == nil:
		return msg
	case d.Subject.Start.Line == 0:
		return fmt.Sprintf("%s: %s", d.Subject.Filename, msg)
	}
	return fmt.Sprintf("%s:%d,%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, msg)
}

// SortDiagnostics sorts diagnostics in place by file, line, column and
// then message, so that output is stable and reads top to bottom.
// Diagnostics without a subject come first.
func SortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i], diags[j]
		switch {
		case a.Subject == nil || b.Subject == nil:
			if (a.Subject == nil) != (b.Subject == nil) {
				return a.Subject == nil
			}
		case a.Subject.Filename != b.Subject.Filename:
			return a.Subject.Filename < b.Subject.Filename
		case a.Subject.Start.Line != b.Subject.Start.Line:
			return a.Subject.Start.Line < b.Subject.Start.Line
		case a.Subject.Start.Column != b.Subject.Start.Column:
			return a.Subject.Start.Column < b.Subject.Start.Column
		}
		return FormatDiagnostic(a) < FormatDiagnostic(b)
	})
}

// Errors returns the error diagnostics among diags, sorted and formatted
// with [FormatDiagnostic]; warnings are left out. It does not change diags.
func Errors(diags hcl.Diagnostics) []string {
	var errs hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs = append(errs, d)
		}
	}
	SortDiagnostics(errs)
	out := make([]string, len(errs))
	for i, d := range errs {
		out[i] = FormatDiagnostic(d)
	}
	return out
}
