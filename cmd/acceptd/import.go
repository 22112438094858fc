package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/acceptd/acceptd/importer"
)

const importUsage = "usage: acceptd import [-services FILE] inetd|xinetd FILE..."

// defaultServicesFile is where service names are looked up.
const defaultServicesFile = "/etc/services"

// runImport is `acceptd import [-services FILE] inetd|xinetd FILE...`: it
// translates inetd.conf or xinetd files into acceptd HCL on stdout (see
// the importer package for what becomes of each setting).
//
// It translates all it can: a file that cannot be read, or a line that
// cannot be parsed at all, is reported on stderr as FILE:LINE: message,
// and the rest is still written to stdout, so that a migration gets every
// service there is to get. The exit status is then 1, so that a script
// notices the output is incomplete; it is 0 when every file was read and
// every line understood (settings without an acceptd equivalent are not
// errors: the output says what they were, in comments), and 2 on a usage
// error. For xinetd, a directory stands for its files, taken as xinetd's
// includedir takes them.
func runImport(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("import", stderr)
	servicesPath := fs.String("services", defaultServicesFile, "services(5) `FILE` that maps service names to ports")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) < 2 || (pos[0] != "inetd" && pos[0] != "xinetd") {
		fmt.Fprintln(stderr, importUsage)
		return 2
	}
	kind, paths := pos[0], pos[1:]
	status := 0

	services, err := readServices(*servicesPath, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "acceptd import: %v\n", err)
		return 1
	}

	var files []importer.File
	for _, p := range paths {
		more, err := readImportFile(kind, p)
		if err != nil {
			fmt.Fprintf(stderr, "acceptd import: %v\n", err)
			status = 1
		}
		files = append(files, more...)
	}
	opt := importer.Options{Services: services, Command: "acceptd import " + kind}
	var res importer.Result
	if kind == "inetd" {
		res = importer.Inetd(files, opt)
	} else {
		res = importer.Xinetd(files, opt)
	}
	if _, err := stdout.Write(res.HCL); err != nil {
		fmt.Fprintf(stderr, "acceptd import: write: %v\n", err)
		return 1
	}
	for _, p := range res.Problems {
		fmt.Fprintln(stderr, p.String())
		status = 1
	}
	fmt.Fprintf(stderr, "acceptd import: %d services, %d commented out, %d not translated, %d notes\n",
		res.Services, res.Disabled, res.Skipped, res.Notes)
	return status
}

// readServices reads the services table. When the default file is
// missing (minimal containers often lack it), the importer's excerpt of
// the common services is used instead, with a warning; a file named with
// -services must be there.
func readServices(path string, stderr io.Writer) (*importer.Services, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		return importer.ParseServices(data), nil
	}
	if path == defaultServicesFile && errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stderr, "acceptd import: %s not found; using a built-in list of common services\n", path)
		return importer.ParseServices([]byte(importer.FallbackServices)), nil
	}
	return nil, fmt.Errorf("services table: %w", err)
}

// readImportFile reads one FILE argument. For xinetd a directory is read
// as xinetd's includedir reads it: every file whose name has no '.' and
// does not end in '~', in byte order of the names.
func readImportFile(kind, path string) ([]importer.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return []importer.File{{Name: path, Data: data}}, nil
	}
	if kind != "xinetd" {
		return nil, fmt.Errorf("%s is a directory", path)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.Contains(n, ".") || strings.HasSuffix(n, "~") {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var files []importer.File
	var errs []error
	for _, n := range names {
		p := filepath.Join(path, n)
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files = append(files, importer.File{Name: p, Data: data})
	}
	return files, errors.Join(errs...)
}
