package ftp

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestReplyCodesOnlyHere: reply codes are named here; the server, the
// client and the command never write a raw one (a reply call, a
// comparison with a Code field or a code variable, a constant).
func TestReplyCodesOnlyHere(t *testing.T) {
	for _, dir := range []string{"../server", "../client", "../cmd/ferry"} {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkgs {
			for name, f := range p.Files {
				ast.Inspect(f, func(n ast.Node) bool {
					var lits []ast.Expr
					switch x := n.(type) {
					case *ast.CallExpr:
						if sel, ok := x.Fun.(*ast.SelectorExpr); ok && strings.HasPrefix(strings.ToLower(sel.Sel.Name), "reply") && len(x.Args) > 0 {
							lits = append(lits, x.Args[0])
						}
					case *ast.BinaryExpr:
						if isCode(x.X) {
							lits = append(lits, x.Y)
						}
						if isCode(x.Y) {
							lits = append(lits, x.X)
						}
					case *ast.ValueSpec:
						for i, id := range x.Names {
							if strings.HasPrefix(strings.ToLower(id.Name), "code") && i < len(x.Values) {
								lits = append(lits, x.Values[i])
							}
						}
					}
					for _, e := range lits {
						if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.INT {
							if v, _ := strconv.Atoi(b.Value); v >= 100 && v < 600 {
								t.Errorf("%s: raw reply code %s", filepath.Base(name)+":"+strconv.Itoa(fset.Position(b.Pos()).Line), b.Value)
							}
						}
					}
					return true
				})
			}
		}
	}
}

func isCode(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.SelectorExpr:
		return x.Sel.Name == "Code"
	case *ast.Ident:
		return x.Name == "code"
	}
	return false
}
