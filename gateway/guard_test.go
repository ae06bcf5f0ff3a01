package gateway

import (
	"go/version"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/h2cgw/h2cgw/internal/toolchain"
)

// The gateway is only as hardened as the code that parses for it: x/net
// (the HTTP/2 server on Go 1.26, the h2c upstream transport, the framer),
// the PROXY protocol reader, and the Go toolchain (net/http, and its HTTP/2
// server from Go 1.27). These floors are the versions the hardening tests
// were written against; each fixes, among others:
//
//   - golang.org/x/net v0.17.0: Rapid Reset, CVE-2023-44487 (GO-2023-2102);
//     v0.23.0: CONTINUATION flood, CVE-2023-45288 (GO-2024-2687); v0.60.0:
//     the HTTP/2 half of the 2026 net/http fixes; v0.63.0: the wrapping
//     transport h2c upstreams use on Go 1.27.
//   - github.com/pires/go-proxyproto v0.16.0.
//   - Go: internal/toolchain lists the floor of each release line.
//
// Raise them together with go.mod; never lower them. govulncheck
// (scripts/govulncheck.sh) checks for newer advisories where its database
// can be reached; this guard stands where it cannot.
var minModules = map[string]string{
	"golang.org/x/net":               "v0.63.0",
	"github.com/pires/go-proxyproto": "v0.16.0",
}

// minGoLine is the floor go.mod's go line must hold, so that no toolchain
// below it builds the module at all.
const minGoLine = "1.26.11"

// TestGuardVersions fails when the build uses a module older than its floor
// in minModules, when go.mod's go line is below minGoLine, or when the test
// runs on a toolchain below its release line's floor.
func TestGuardVersions(t *testing.T) {
	for path, min := range minModules {
		got, from := moduleVersion(t, path)
		if got == "" {
			t.Errorf("%s: no version found (%s); a directory replacement cannot be checked", path, from)
		} else if semverLess(got, min) {
			t.Errorf("%s %s (from %s); want at least %s", path, got, from, min)
		} else {
			t.Logf("%s %s (from %s) ≥ %s", path, got, from, min)
		}
	}
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := ""
	for _, line := range strings.Split(string(mod), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "go" {
			goLine = f[1]
		}
	}
	if version.Compare("go"+goLine, "go"+minGoLine) < 0 {
		t.Errorf("go.mod: go %s; want at least %s", goLine, minGoLine)
	}
	if err := toolchain.Check(runtime.Version()); err != nil {
		t.Error(err)
	} else {
		t.Logf("toolchain %s, floor of its line %q", runtime.Version(), toolchain.Floor(runtime.Version()))
	}
}

// moduleVersion returns the version of module path linked into the test
// binary. Test binaries carry no dependency list in their build info, so
// it falls back on go.mod, replace directives applied.
func moduleVersion(t *testing.T, path string) (v, from string) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path != path {
				continue
			}
			if d.Replace != nil {
				return d.Replace.Version, "build info, replaced by " + d.Replace.Path
			}
			return d.Version, "build info"
		}
	}
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatalf("no dependency in the build info and no go.mod: %v", err)
	}
	v, from = goModVersion(string(mod), path)
	return v, "go.mod" + from
}

// goModVersion returns the version go.mod selects for path: a replace
// directive's (which, for a local directory, has none: "") or else the
// require directive's. It reads the directives line by line, in and out of
// blocks, which is all go.mod's grammar needs here.
func goModVersion(mod, path string) (v, note string) {
	var required, replaced string
	isReplace := false
	block := ""
	for _, line := range strings.Split(mod, "\n") {
		line, _, _ = strings.Cut(line, "//")
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case f[0] == ")":
			block = ""
			continue
		case len(f) == 2 && f[1] == "(":
			block = f[0]
			continue
		case block == "" && (f[0] == "require" || f[0] == "replace"):
			// A single-line directive.
			if len(f) > 1 && f[1] == path {
				if f[0] == "require" && len(f) >= 3 {
					required = f[2]
				} else if f[0] == "replace" {
					isReplace, replaced = true, replacementVersion(f[1:])
				}
			}
			continue
		}
		if len(f) > 0 && f[0] == path {
			switch block {
			case "require":
				if len(f) >= 2 {
					required = f[1]
				}
			case "replace":
				isReplace, replaced = true, replacementVersion(f)
			}
		}
	}
	if isReplace {
		return replaced, ", replaced"
	}
	return required, ""
}

// replacementVersion reads "path [version] => newpath [version]" and returns
// the new version, "" for a directory.
func replacementVersion(f []string) string {
	for i, w := range f {
		if w == "=>" && i+2 < len(f) {
			return f[i+2]
		}
	}
	return ""
}

// semverLess reports a < b for versions "vMAJOR.MINOR.PATCH[-pre]". A
// pre-release or pseudo-version sorts before its release, as in semver.
func semverLess(a, b string) bool {
	pa, prea := semverParts(a)
	pb, preb := semverParts(b)
	for i := range pa {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return prea && !preb
}

func semverParts(v string) (n [3]int, pre bool) {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		pre = v[i] == '-'
		v = v[:i]
	}
	for i, s := range strings.SplitN(v, ".", 3) {
		n[i], _ = strconv.Atoi(s)
	}
	return n, pre
}

func TestGoModVersion(t *testing.T) {
	const x = "golang.org/x/net"
	cases := []struct{ name, mod, want string }{
		{"block", "module m\n\nrequire (\n\tgolang.org/x/net v0.62.0\n\tgolang.org/x/text v0.1.0 // indirect\n)\n", "v0.62.0"},
		{"single line", "module m\nrequire golang.org/x/net v0.61.0 // indirect\n", "v0.61.0"},
		{"replaced", "module m\nrequire golang.org/x/net v0.62.0\nreplace golang.org/x/net => golang.org/x/net v0.16.0\n", "v0.16.0"},
		{"replaced in block", "module m\nrequire golang.org/x/net v0.62.0\nreplace (\n\tgolang.org/x/net v0.62.0 => example.com/fork v0.1.0\n)\n", "v0.1.0"},
		{"replaced by a directory", "module m\nrequire golang.org/x/net v0.62.0\nreplace golang.org/x/net => ../net\n", ""},
		{"absent", "module m\nrequire golang.org/x/netx v0.62.0\n", ""},
	}
	for _, c := range cases {
		if got, _ := goModVersion(c.mod, x); got != c.want {
			t.Errorf("%s: got %q; want %q", c.name, got, c.want)
		}
	}
}

func TestSemverLess(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"v0.61.0", "v0.62.0", true},
		{"v0.62.0", "v0.62.0", false},
		{"v0.62.1", "v0.62.0", false},
		{"v0.9.0", "v0.62.0", true},
		{"v1.0.0", "v0.62.0", false},
		{"v0.62.0-rc.1", "v0.62.0", true},
		{"v0.62.1-0.20260101000000-abcdef123456", "v0.62.0", false},
		{"v0.17.0", "v0.62.0", true},
	}
	for _, c := range cases {
		if got := semverLess(c.a, c.b); got != c.want {
			t.Errorf("semverLess(%s, %s) = %v; want %v", c.a, c.b, got, c.want)
		}
	}
}
