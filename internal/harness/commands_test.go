package harness

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"testing"
)

// TestCommandsSorted keeps the table of commands as a reader expects to
// find it: one literal, its names in order.
func TestCommandsSorted(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "commands.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	ast.Inspect(f, func(n ast.Node) bool {
		if kv, ok := n.(*ast.KeyValueExpr); ok {
			if lit, ok := kv.Key.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				name, _ := strconv.Unquote(lit.Value)
				names = append(names, name)
			}
		}
		return true
	})
	if len(names) != len(commands) {
		t.Fatalf("commands.go lists %d commands, the table has %d: is one added elsewhere?", len(names), len(commands))
	}
	if !slices.IsSorted(names) {
		t.Errorf("the commands in commands.go are not sorted by name: %v", names)
	}
}
