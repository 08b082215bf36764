package core

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

// TestCoreIsPure checks the rules that keep the core a state machine: no
// goroutines, no wall clock, no global randomness, no I/O, no backend imports.
func TestCoreIsPure(t *testing.T) {
	allowedNonStd := map[string]bool{"github.com/coreos/go-systemd/v22/unit": true}
	forbiddenStd := map[string]bool{
		"math/rand": true, "math/rand/v2": true, "os": true, "os/exec": true, "net": true,
		"net/http": true, "io/ioutil": true, "syscall": true, "log": true, "log/slog": true,
		"sync": true, "unsafe": true,
	}
	forbiddenTime := map[string]bool{"Now": true, "Sleep": true, "After": true, "AfterFunc": true,
		"Tick": true, "NewTimer": true, "NewTicker": true, "Since": true, "Until": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		checked++
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			isStd := !strings.Contains(strings.SplitN(path, "/", 2)[0], ".")
			if (isStd && forbiddenStd[path]) || (!isStd && !allowedNonStd[path]) {
				t.Errorf("%s imports %q; the core may not", fset.Position(imp.Pos()), path)
			}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s starts a goroutine; the core may not", fset.Position(x.Pos()))
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok && id.Name == "time" && forbiddenTime[x.Sel.Name] {
					t.Errorf("%s uses time.%s; the core takes time as a value", fset.Position(x.Pos()), x.Sel.Name)
				}
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no core source files found")
	}
}
