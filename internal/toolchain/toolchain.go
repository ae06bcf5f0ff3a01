// Package toolchain knows the oldest Go patch releases h2cgw may be built
// with. HTTP/1.1 parsing and, from Go 1.27 on, the HTTP/2 server are the
// standard library's: a build made with a toolchain that lacks a security
// fix serves with that hole, whatever h2cgw's own code does.
package toolchain

import (
	"fmt"
	"go/version"
)

// floors maps each supported release line (README "Supported Go versions")
// to its oldest acceptable patch release:
//
//   - GO-2026-6603, -6605, -6609, -6610, -6611, -6612, -6613 and -6617
//     (net/http, its HTTP/2, net/textproto) are fixed in 1.26.9 and 1.27.2;
//   - GO-2026-6859 (net/http) is fixed in 1.26.11 and 1.27.4.
//
// go.mod's go line holds the 1.26 floor for every build; the 1.27 floor
// can only be checked at run time (Check) and in tests.
var floors = map[string]string{
	"go1.26": "go1.26.11",
	"go1.27": "go1.27.4",
}

// oldest is the oldest supported release line.
const oldest = "go1.26"

// Floor returns the oldest acceptable release of v's line ("go1.27.1" →
// "go1.27.4"), or "" for a line newer than every listed one.
func Floor(v string) string { return floors[version.Lang(v)] }

// Check returns an error when v, a Go version as runtime.Version reports
// it, is a release older than the floor of its line, or of a line older
// than every supported one. A development toolchain ("devel …"), which
// go/version cannot order, and a line newer than the listed ones pass.
func Check(v string) error {
	if !version.IsValid(v) {
		return nil
	}
	if version.Compare(version.Lang(v), oldest) < 0 {
		return fmt.Errorf("built with %s; h2cgw supports Go %s and later (README \"Supported Go versions\")", v, oldest)
	}
	if f := Floor(v); f != "" && version.Compare(v, f) < 0 {
		return fmt.Errorf("built with %s, which lacks security fixes in net/http; rebuild with %s or later", v, f)
	}
	return nil
}
