package demangle

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
)

func TestMSVC(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// ?poke @Widget@ns@ @ Q E B A H H @ Z: public, __ptr64 const this, __cdecl, int (int)
		{"?poke@Widget@ns@@QEBAHH@Z", "ns::Widget::poke(int) const"},
		// A template function keeps its return type: N = double.
		{"??$twice@N@@YANN@Z", "double twice<double>(double)"},
		{"??$twice@_J@@YA_J_J@Z", "__int64 twice<__int64>(__int64)"},
		// ??0 constructor, ??1 destructor: '@' for no return type, X for no parameters.
		{"??0Widget@ns@@QEAA@XZ", "ns::Widget::Widget()"},
		{"??1Widget@ns@@QEAA@XZ", "ns::Widget::~Widget()"},
		// A global variable: 3, type H, storage A.
		{"?x@@3HA", "int x"},
		// PEBD: pointer (E __ptr64) to const (B) char (D); AEAH: reference to int.
		{"?f@@YAXPEBDAEAH@Z", "f(char const*,int&)"},
		// U01@: struct named by name back-references 0 (Widget) and 1 (ns).
		{"??4Widget@ns@@QEAAAEAU01@AEBU01@@Z", "ns::Widget::operator=(ns::Widget const&)"},
		// P6AHH@Z: pointer to a __cdecl function int(int).
		{"?g@@YAHP6AHH@Z@Z", "g(int (*)(int))"},
		{"??_GWidget@ns@@QEAAPEAXI@Z", "ns::Widget::`scalar deleting destructor'(unsigned int)"},
		// Templates nest; their names are back-referenced outside them.
		{"?h@@YAXV?$vector@HV?$allocator@H@std@@@std@@@Z", "h(std::vector<int,std::allocator<int>>)"},
		// Parameter back-reference 0: the first multi-letter parameter type.
		{"?repeat@@YAXPEAUWidget@ns@@0PEBU12@0@Z", "repeat(ns::Widget*,ns::Widget*,ns::Widget const*,ns::Widget*)"},
		// ZZ: an ellipsis, then no throw specification.
		{"?variadic@@YAXPEBDZZ", "variadic(char const*,...)"},
		// $03: the integer template argument 4.
		{"?first@?$Box@H$03@ns@@QEBAHXZ", "ns::Box<int,4>::first() const"},
		{"?take@Widget@ns@@QEAAX$$QEAU12@@Z", "ns::Widget::take(ns::Widget&&)"},
	} {
		got, err := MSVC(tc.in)
		if assert.NoError(t, err, tc.in) {
			assert.Equal(t, tc.want, got, tc.in)
		}
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"poke", ErrNotMangled},
		{"?", ErrNotMangled},
		{"?poke@Widget@ns@@QEBAHH", ErrTruncated},
		{"?poke@Widget@ns@@QEBAH5@Z", ErrBackRef},
		{"??_C@_01FJMABOPO@x?$AA@", ErrUnsupported}, // a string literal
		{"?f@@YAX" + strings.Repeat("PEA", 40) + "H@Z", ErrTooDeep},
		{"?" + strings.Repeat("a", MaxName), ErrTooLong},
		{"?poke@Widget@ns@@QEBAHH@Zjunk", ErrUnsupported},
	} {
		_, err := MSVC(tc.in)
		assert.True(t, errors.Is(err, tc.want), "%q: %v, want %v", tc.in, err, tc.want)
		var e *Error
		assert.True(t, errors.As(err, &e), "%q: not an *Error", tc.in)
	}
}

func TestName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"_ZNK2ns6Widget4pokeEi", "ns::Widget::poke(int) const", true},
		{"_Z5twiceIdET_S0_", "double twice<double>(double)", true},
		{"?poke@Widget@ns@@QEBAHH@Z", "ns::Widget::poke(int) const", true},
		{"main", "", false},
		{"_Zgarbage", "", false},
		{"?garbage", "", false},
	} {
		got, ok := Name(tc.in)
		assert.Equal(t, tc.ok, ok, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

// undnameNorm reduces a demangled name to what both our output and
// llvm-undname's share: no access, storage or calling convention words,
// no class/struct/enum keywords, no __ptr64, no spaces.
var undnameDrop = regexp.MustCompile(`\b(public|private|protected): |\b(static|virtual|class|struct|union|enum) |__ptr64|__cdecl|\s+`)

func undnameNorm(s string) string {
	if _, after, ok := strings.Cut(s, "__cdecl "); ok {
		s = after // a function: what follows the calling convention
	}
	return strings.ReplaceAll(undnameDrop.ReplaceAllString(s, ""), "(void)", "()")
}

// TestMSVCAgainstUndname demangles every Microsoft name clang gives the
// declarations of testdata/names.cc and compares with llvm-undname.
func TestMSVCAgainstUndname(t *testing.T) {
	clang := testkit.Tool(t, "clang++")
	undname := testkit.Tool(t, "llvm-undname")
	nm := testkit.Tool(t, "llvm-nm")
	obj := filepath.Join(t.TempDir(), "names.obj")
	out, err := exec.Command(clang, "--target=x86_64-pc-windows-msvc", "-c", "-o", obj, "testdata/names.cc").CombinedOutput()
	require.NoError(t, err, "%s", out)
	syms, err := exec.Command(nm, obj).Output()
	require.NoError(t, err)
	checked := 0
	for _, line := range strings.Split(string(syms), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[len(f)-1], "?") {
			continue
		}
		name := f[len(f)-1]
		got, err := MSVC(name)
		if strings.HasPrefix(name, "??_C@") || strings.HasPrefix(name, "?dtor$") {
			assert.Error(t, err, "%s: string literals and funclets are not demangled", name)
			continue
		}
		if !assert.NoError(t, err, name) {
			continue
		}
		ref, err := exec.Command(undname, name).Output()
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(string(ref)), "\n")
		want := undnameNorm(lines[len(lines)-1])
		assert.True(t, strings.HasSuffix(undnameNorm(got), want), "%s:\n ours      %s\n undname   %s", name, got, lines[len(lines)-1])
		checked++
	}
	assert.Greater(t, checked, 15)
	t.Logf("%d names checked against llvm-undname", checked)
}

func FuzzMSVC(f *testing.F) {
	for _, s := range []string{"?poke@Widget@ns@@QEBAHH@Z", "??$twice@N@@YANN@Z", "?h@@YAXV?$vector@HV?$allocator@H@std@@@std@@@Z",
		"?repeat@@YAXPEAUWidget@ns@@0PEBU12@0@Z", "?first@?$Box@H$03@ns@@QEBAHXZ", "?g@@YAHP6AHH@Z@Z", "?label@inner@ns@@3PEBDEB"} {
		f.Add(s)
	}
	if b, err := os.ReadFile("testdata/names.txt"); err == nil {
		for _, s := range strings.Fields(string(b)) {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, name string) {
		out, err := MSVC(name)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Offset < 0 || e.Offset > len(name) {
				t.Fatalf("%q: error %v", name, err)
			}
			return
		}
		if len(out) > maxOutput {
			t.Fatalf("%q: %d bytes of output", name, len(out))
		}
		if _, ok := Name(name); !ok {
			t.Fatalf("%q: MSVC reads it, Name does not", name)
		}
	})
}
