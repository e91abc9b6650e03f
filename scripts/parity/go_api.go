// go_api: the public API of a Go package, from the package's own syntax
// trees (go/parser, go/ast), as JSON on stdout, for scripts/check-sdk-parity.py.
//
//	go run scripts/parity/go_api.go sdk-go/netmesh
//
// For every exported function and every exported method of an exported
// type (test files excluded): its name ("Func" or "Type.Method"), its
// arity (parameters, a variadic one counted once), whether it is variadic,
// and the file and line range of its declaration, which the checker matches
// against a coverage profile. Also, for every function or method (exported
// or not), the C functions it calls directly (C.net_*) and the package's own
// functions and methods it calls (kept in target/parity/go-api.json, to help
// write the table's entries).
package main

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type Decl struct {
	Name      string   `json:"name"`
	Exported  bool     `json:"exported"`
	Arity     int      `json:"arity"`
	Variadic  bool     `json:"variadic"`
	File      string   `json:"file"`
	StartLine int      `json:"start_line"`
	EndLine   int      `json:"end_line"`
	CCalls    []string `json:"c_calls"`
	Calls     []string `json:"calls"`
}

func receiverType(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return ""
	}
	t := fd.Recv.List[0].Type
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
		case *ast.IndexExpr: // generic receiver T[P]
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run go_api.go <package dir>")
		os.Exit(2)
	}
	dir := os.Args[1]
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_api:", err)
		os.Exit(1)
	}
	var decls []Decl
	exportedTypes := map[string]bool{}
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, d := range f.Decls {
				if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.TYPE {
					for _, s := range gd.Specs {
						ts := s.(*ast.TypeSpec)
						if ts.Name.IsExported() {
							exportedTypes[ts.Name.Name] = true
						}
					}
				}
			}
		}
	}
	for _, pkg := range pkgs {
		for path, f := range pkg.Files {
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok {
					continue
				}
				name := fd.Name.Name
				recv := receiverType(fd)
				exported := fd.Name.IsExported()
				if recv != "" {
					exported = exported && exportedTypes[recv]
					name = recv + "." + name
				}
				arity, variadic := 0, false
				for _, field := range fd.Type.Params.List {
					n := len(field.Names)
					if n == 0 {
						n = 1
					}
					arity += n
					if _, ok := field.Type.(*ast.Ellipsis); ok {
						variadic = true
					}
				}
				cCalls, calls := map[string]bool{}, map[string]bool{}
				if fd.Body != nil {
					ast.Inspect(fd.Body, func(n ast.Node) bool {
						call, ok := n.(*ast.CallExpr)
						if !ok {
							return true
						}
						switch fn := call.Fun.(type) {
						case *ast.SelectorExpr:
							if x, ok := fn.X.(*ast.Ident); ok && x.Name == "C" {
								if strings.HasPrefix(fn.Sel.Name, "net_") {
									cCalls[fn.Sel.Name] = true
								}
							} else {
								calls["."+fn.Sel.Name] = true // a method (receiver unknown)
							}
						case *ast.Ident:
							calls[fn.Name] = true
						}
						return true
					})
				}
				rel, _ := filepath.Rel(dir, path)
				decls = append(decls, Decl{
					Name: name, Exported: exported, Arity: arity, Variadic: variadic,
					File: rel, StartLine: fset.Position(fd.Pos()).Line,
					EndLine: fset.Position(fd.End()).Line,
					CCalls:  keys(cCalls), Calls: keys(calls),
				})
			}
		}
	}
	sort.Slice(decls, func(i, j int) bool { return decls[i].Name < decls[j].Name })
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(decls); err != nil {
		fmt.Fprintln(os.Stderr, "go_api:", err)
		os.Exit(1)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
