package guest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exportTables are the export tables as written in the source, with the
// values the package built from them.
var exportTables = map[string][]apiExport{
	"ntdllExports": ntdllExports, "kernel32Exports": kernel32Exports,
	"crtExports": crtExports, "vcruntimeExports": vcruntimeExports,
}

// tableLine is one line of an export table as the source writes it.
type tableLine struct {
	table, name string
	arity       int
	handler     ast.Expr
	pos         token.Position
}

// argUse is what the package's code reads of a call's arguments: for
// each function or method that takes a *call, the highest argument index
// it reads with a constant (c.arg(2), c.str(0), c.wstr(1)), and the
// functions it hands the call to.
type argUse struct {
	fset  *token.FileSet
	funcs map[string]*ast.FuncDecl // "name" or "call.name" for methods of *call
	max   map[string]int
	lines []tableLine
}

func isCallPtr(e ast.Expr) bool {
	s, ok := e.(*ast.StarExpr)
	if !ok {
		return false
	}
	id, ok := s.X.(*ast.Ident)
	return ok && id.Name == "call"
}

func loadArgUse(t *testing.T) *argUse {
	t.Helper()
	u := &argUse{fset: token.NewFileSet(), funcs: map[string]*ast.FuncDecl{}, max: map[string]int{}}
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(u.fset, f, nil, 0)
		require.NoError(t, err)
		for _, d := range af.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				key := d.Name.Name
				if d.Recv != nil && len(d.Recv.List) == 1 {
					if !isCallPtr(d.Recv.List[0].Type) {
						continue
					}
					key = "call." + key
				}
				u.funcs[key] = d
			case *ast.GenDecl:
				for _, s := range d.Specs {
					vs, ok := s.(*ast.ValueSpec)
					if !ok || len(vs.Names) != 1 || len(vs.Values) != 1 {
						continue
					}
					if _, ok := exportTables[vs.Names[0].Name]; !ok {
						continue
					}
					cl, ok := vs.Values[0].(*ast.CompositeLit)
					require.True(t, ok, "%s is not a composite literal", vs.Names[0].Name)
					for _, e := range cl.Elts {
						el, ok := e.(*ast.CompositeLit)
						require.True(t, ok && len(el.Elts) == 3, "%s: a line that is not {name, arity, handler}", u.fset.Position(e.Pos()))
						name, err1 := strconv.Unquote(el.Elts[0].(*ast.BasicLit).Value)
						arity, err2 := strconv.Atoi(el.Elts[1].(*ast.BasicLit).Value)
						require.NoError(t, err1)
						require.NoError(t, err2)
						u.lines = append(u.lines, tableLine{vs.Names[0].Name, name, arity, el.Elts[2], u.fset.Position(e.Pos())})
					}
				}
			}
		}
	}
	return u
}

// argIndexMethods are the methods of *call whose first argument is the
// index of the argument they read.
var argIndexMethods = map[string]bool{"arg": true, "str": true, "wstr": true}

// maxArg is the highest argument index the code n reads, following the
// functions and methods it hands a *call to (-1: none). seen breaks
// cycles.
func (u *argUse) maxArg(n ast.Node, seen map[string]bool) int {
	m := -1
	visit := func(key string) {
		d := u.funcs[key]
		if d == nil || seen[key] {
			return
		}
		seen[key] = true
		if v, ok := u.max[key]; ok {
			m = max(m, v)
			return
		}
		v := u.maxArg(d.Body, seen)
		u.max[key] = v
		m = max(m, v)
	}
	ast.Inspect(n, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
				if argIndexMethods[sel.Sel.Name] && len(n.Args) == 1 {
					if lit, ok := n.Args[0].(*ast.BasicLit); ok && lit.Kind == token.INT {
						i, _ := strconv.Atoi(lit.Value)
						m = max(m, i)
					}
				}
			}
		case *ast.SelectorExpr:
			// x.f: a method of *call when x is one (other selectors
			// name fields and methods of other types, never a function
			// of the package).
			visit("call." + n.Sel.Name)
			m = max(m, u.maxArg(n.X, seen))
			return false
		case *ast.Ident:
			// A function named anywhere (called, or passed as a handler).
			visit(n.Name)
		}
		return true
	})
	return m
}

// TestExportArity: no handler reads an argument beyond its export's
// arity, and the arities equal the argument counts of the prototypes in
// mingw-w64's headers for every export they declare.
func TestExportArity(t *testing.T) {
	u := loadArgUse(t)
	n := 0
	for _, tab := range exportTables {
		n += len(tab)
	}
	require.Len(t, u.lines, n, "lines parsed from the source against the lines of the tables")
	for _, l := range u.lines {
		if got := u.maxArg(l.handler, map[string]bool{}); got >= l.arity {
			assert.Failf(t, "handler reads beyond the arity", "%s: %s has arity %d but its handler reads argument %d", l.pos, l.name, l.arity, got)
		}
	}

	cc := needTool(t, "x86_64-w64-mingw32-gcc")
	protos := map[string]string{} // name -> parameter list
	for _, def := range []string{"-U_UCRT", "-D_UCRT"} {
		aux := filepath.Join(t.TempDir(), "aux.txt")
		out, err := exec.Command(cc, def, "-fsyntax-only", "-aux-info", aux, "testdata/exports.c").CombinedOutput()
		require.NoError(t, err, "%s", out)
		b, err := os.ReadFile(aux)
		require.NoError(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			if name, params, ok := auxPrototype(line); ok {
				if _, dup := protos[name]; !dup {
					protos[name] = params
				}
			}
		}
	}
	checked := map[string]bool{}
	for _, l := range u.lines {
		params, ok := protos[l.name]
		if !ok {
			continue
		}
		checked[l.name] = true
		assert.Equal(t, countParams(params), l.arity, "%s: %s(%s)", l.pos, l.name, params)
	}
	// 281 of the 315 names are declared in the headers today; a lower
	// count means the headers were not read as they should be.
	assert.GreaterOrEqual(t, len(checked), 280, "exports checked against the headers")
	t.Logf("%d export names checked against mingw-w64's headers", len(checked))
}

// auxDecl is a declaration gcc -aux-info writes: "/* file:line:XX */
// extern TYPE NAME (PARAMS);" (static for inline functions), NAME maybe
// after a '*' of the return type.
var auxDecl = regexp.MustCompile(`^/\* [^*]* \*/ (?:extern|static) .*?[ *]([A-Za-z_][A-Za-z0-9_]*) \(`)

// auxPrototype returns the name and the parameter list of a function
// declaration line of gcc -aux-info output.
func auxPrototype(line string) (name, params string, ok bool) {
	m := auxDecl.FindStringSubmatchIndex(line)
	if m == nil {
		return "", "", false
	}
	name = line[m[2]:m[3]]
	depth := 1
	for i := m[1]; i < len(line); i++ {
		switch line[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return name, strings.TrimSpace(line[m[1]:i]), true
			}
		}
	}
	return "", "", false
}

// countParams counts the parameters before any "..." of a C parameter
// list ("void" is none).
func countParams(params string) int {
	if params == "" || params == "void" {
		return 0
	}
	n, depth := 1, 0
	for _, ch := range params {
		switch ch {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				n++
			}
		}
	}
	if strings.HasSuffix(params, "...") {
		n--
	}
	return n
}

func TestCountParams(t *testing.T) {
	for in, want := range map[string]int{
		"void": 0, "": 0, "int": 1, "const char *, ...": 1,
		"void *, size_t, size_t, int (*) (const void *, const void *)":            4,
		"PVOID, PVOID, PEXCEPTION_RECORD, PVOID, PCONTEXT, PUNWIND_HISTORY_TABLE": 6,
	} {
		assert.Equal(t, want, countParams(in), in)
	}
	name, params, ok := auxPrototype(`/* /usr/share/mingw-w64/include/stdlib.h:441:NC */ extern void *bsearch (const void *, const void *, size_t, size_t, int (*) (const void *, const void *));`)
	assert.True(t, ok)
	assert.Equal(t, "bsearch", name)
	assert.Equal(t, 5, countParams(params))
}
