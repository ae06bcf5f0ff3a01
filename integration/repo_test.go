package integration

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// citation matches references to documents a reader of the repository
// cannot open: a behaviour contract, a pitfalls list and a style guide kept
// outside it, a scale-out document that was never written, and the issue
// tracker's numbers. The repository cites RFC sections, upstream issues
// (golang/go#…) and README sections instead.
//
// The bracketed spaces keep this pattern from matching itself.
var citation = regexp.MustCompile(`SPEC[ ]§|PITFALLS[ ][0-9]|STYLE[ ][0-9]|STYLE[ ]rule|RUNNING_AT[_]SCALE|CONTRACT[S]:|\bissue[ ][0-9]`)

// TestCitationsResolve: no file of the repository cites what it does not
// contain, and the license the README names is there.
func TestCitationsResolve(t *testing.T) {
	root := filepath.Join("..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "out", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".yaml", ".yml", ".sh":
		default:
			if d.Name() != "Makefile" && d.Name() != "Dockerfile" {
				return nil
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if citation.MatchString(line) {
				t.Errorf("%s:%d cites a document the repository does not hold: %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	lic, err := os.ReadFile(filepath.Join(root, "LICENSE"))
	if err != nil || !strings.Contains(string(lic), "Apache License") {
		t.Errorf("LICENSE: %v; want the Apache License the README names", err)
	}
	readme, _ := os.ReadFile(filepath.Join(root, "README.md"))
	if !strings.Contains(string(readme), "](LICENSE)") {
		t.Error("README.md does not link LICENSE")
	}
}
