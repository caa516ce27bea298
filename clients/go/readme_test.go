package flotilla_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var includeBlock = regexp.MustCompile("(?s)<!-- include: (\\S+) -->\n```go\n(.*?)```\n")

// The README's example blocks are the files of examples/, verbatim, and every file is shown.
func TestReadmeExamplesAreTheFiles(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	for _, m := range includeBlock.FindAllStringSubmatch(string(readme), -1) {
		path, block := m[1], m[2]
		file, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("README includes %s: %v", path, err)
			continue
		}
		if string(file) != block {
			t.Errorf("README's block of %s differs from the file: copy the file into the README", path)
		}
		shown[path] = true
	}
	files, _ := filepath.Glob("examples/*.go")
	for _, f := range files {
		if !shown[f] && filepath.Base(f) != "doc.go" {
			t.Errorf("%s is not in the README", f)
		}
	}
}

// Every exported function of examples/ is called by the live scenario, so each one runs.
func TestScenarioRunsEveryExample(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, "examples", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	scenario, err := os.ReadFile("scenario_test.go")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, decl := range f.Decls {
				if fn, ok := decl.(*ast.FuncDecl); ok && fn.Name.IsExported() {
					n++
					if !strings.Contains(string(scenario), "examples."+fn.Name.Name+"(") {
						t.Errorf("examples.%s is not run by scenario_test.go", fn.Name.Name)
					}
				}
			}
		}
	}
	if n < 8 {
		t.Fatalf("found %d example functions", n)
	}
}
