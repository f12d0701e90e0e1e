package integration_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Every error the library makes starts with one prefix style: the import
// path under the module, "tlscache: " for the core and "tlscache/fleet: "
// and so on for the others, whatever package a user meets it from.
func TestErrorPrefixes(t *testing.T) {
	for _, pkg := range []string{"tlscache", "adapter", "fleet", "redisstore", "metrics", "quicadapter"} {
		want := "tlscache/" + pkg + ": "
		if pkg == "tlscache" {
			want = "tlscache: "
		}
		files, err := filepath.Glob(filepath.Join("..", pkg, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no files (%v)", pkg, err)
		}
		checked := 0
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); !ok || !(id.Name == "errors" && sel.Sel.Name == "New" || id.Name == "fmt" && sel.Sel.Name == "Errorf") {
					return true
				}
				lit, ok := call.Args[0].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, _ := strconv.Unquote(lit.Value)
				if strings.HasPrefix(s, "%w") || strings.HasPrefix(s, "%s") {
					return true // wraps an error that carries the prefix
				}
				checked++
				if !strings.HasPrefix(s, want) {
					t.Errorf("%s: error %q does not start with %q", file, s, want)
				}
				return true
			})
		}
		t.Logf("%s: %d error strings", pkg, checked)
	}
}
