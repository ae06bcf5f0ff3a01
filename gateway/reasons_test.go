package gateway

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// TestReasonListsComplete keeps the lists of reasons.go the one source of
// truth: every Reason constant declared there is in exactly one of
// DeclineReasons, RejectReasons, ProtocolErrorReasons and RefuseReasons, so that metrics
// and tests that enumerate them miss none.
func TestReasonListsComplete(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "reasons.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[Reason]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Reason" {
				continue
			}
			for i, name := range vs.Names {
				lit := vs.Values[i].(*ast.BasicLit)
				declared[Reason(lit.Value[1:len(lit.Value)-1])] = name.Name
			}
		}
	}
	if len(declared) < 18 {
		t.Fatalf("found %d Reason constants in reasons.go; the parse is wrong", len(declared))
	}
	seen := map[Reason]int{}
	for _, list := range [][]Reason{DeclineReasons(), RejectReasons(), ProtocolErrorReasons(), RefuseReasons()} {
		for _, r := range list {
			seen[r]++
		}
	}
	for r, name := range declared {
		if seen[r] != 1 {
			t.Errorf("%s (%q) is in %d of the lists; want exactly 1", name, r, seen[r])
		}
	}
	for r := range seen {
		if _, ok := declared[r]; !ok {
			t.Errorf("%q is listed but not declared in reasons.go", r)
		}
	}
}
