package monitor_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
)

// TestSymbolBounds is issue 14's third case: a PC in a function that has
// no symbol (its .pdata entry known) is named module+0xRVA, not after the
// nearest symbol below it.
func TestSymbolBounds(t *testing.T) {
	objcopy := testkit.Tool(t, "x86_64-w64-mingw32-objcopy")
	built := testkit.BuildPE(t, "monitor/testdata/bounds.c", testkit.MinGW, "-O0")
	exe := filepath.Join(t.TempDir(), "bounds.exe")
	out, err := exec.Command(objcopy, "--strip-symbol=hidden", built, exe).CombinedOutput()
	require.NoError(t, err, "%s", out)

	tg, _ := runTo(t, ucwin.Config{Program: exe}, "before")
	bt, err := tg.Commands().Backtrace(monitor.BacktraceOptions{})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(bt.Frames), 3)
	assert.Equal(t, "before", bt.Frames[0].Loc.Symbol)
	hidden := bt.Frames[1]
	assert.Empty(t, hidden.Loc.Symbol, "frame 1 (in hidden) named %s", hidden.Loc)
	assert.Equal(t, fmt.Sprintf("bounds+%#x", hidden.Loc.RVA), hidden.Loc.String())
	assert.Equal(t, "main", bt.Frames[2].Loc.Symbol)
	// The unstripped program names it.
	tg, _ = runTo(t, ucwin.Config{Program: built}, "before")
	bt, err = tg.Commands().Backtrace(monitor.BacktraceOptions{})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(bt.Frames), 2)
	assert.Equal(t, "hidden", bt.Frames[1].Loc.Symbol)
}

// cxxPrograms are testdata/cxx.cc built by both C++ ABIs.
func cxxPrograms(t *testing.T) map[string]string {
	lib := "/usr/x86_64-w64-mingw32/lib/"
	return map[string]string{
		"mingw": testkit.BuildPE(t, "monitor/testdata/cxx.cc", testkit.MinGWCXX, "-O1", "-g"),
		"msvc": testkit.BuildPE(t, "monitor/testdata/cxx.cc", testkit.ClangMSVC, "-O1", "-gdwarf", "-fno-exceptions", "-fno-rtti",
			"-nostdlib", "-Wl,-entry:start", "-Wl,-subsystem:console", "-Wl,-debug:dwarf", lib+"libkernel32.a"),
	}
}

// TestDemangledBacktrace: monitor bt, its JSON and rspstub run show C++
// names demangled (Itanium for g++, Microsoft for clang's msvc target),
// the JSON keeps the symbol table's name beside it, and --break takes the
// demangled name.
func TestDemangledBacktrace(t *testing.T) {
	for abi, exe := range cxxPrograms(t) {
		t.Run(abi, func(t *testing.T) {
			tg, _ := runTo(t, ucwin.Config{Program: exe}, "ns::Widget::poke(int) const")
			text := monitorCmd(t, tg, "bt")
			assert.Contains(t, text, "!ns::Widget::poke(int) const [")
			var js struct {
				Frames []struct {
					Symbol, Mangled string
				}
			}
			require.NoError(t, json.Unmarshal([]byte(monitorCmd(t, tg, "bt -json")), &js))
			require.NotEmpty(t, js.Frames)
			assert.Equal(t, "ns::Widget::poke(int) const", js.Frames[0].Symbol)
			want := map[string]string{"mingw": "_ZNK2ns6Widget4pokeEi", "msvc": "?poke@Widget@ns@@QEBAHH@Z"}[abi]
			assert.Equal(t, want, js.Frames[0].Mangled)

			out := testkit.Run(t, time.Minute, nil, testkit.Stub(t), "run", "--userland", "synth", exe, "--break", "twice<double>")
			assert.Regexp(t, regexp.MustCompile(`(?m)^00 .*!double twice<double>\(double\) `), out)
			assert.Regexp(t, `(?m)^01 .*!ns::Widget::poke\(int\) const\+0x`, out)
			if t.Failed() {
				t.Logf("bt:\n%s\nrun:\n%s", text, out)
			}
		})
	}
}

// TestDemangledClientScripts: GDB's bt through the script and LLDB's
// rspstub-bt show the demangled names. GDB demangles Itanium names from
// the program's own symbols; Microsoft ones it shows raw, so the script
// puts the stub's name there.
func TestDemangledClientScripts(t *testing.T) {
	progs := cxxPrograms(t)
	t.Run("gdb-msvc", func(t *testing.T) {
		gdb := testkit.Tool(t, "gdb")
		exe := progs["msvc"]
		twice := mustResolve(t, exe, "twice<double>")
		script := writeScript(t, "rspstub-gdb.py", monitor.GDBScript)
		stub := testkit.StartStub(t, exe)
		out := testkit.GDB(t, gdb, exe, stub.Addr, "source "+script,
			fmt.Sprintf("break *%#x", twice), "continue", "echo @@bt\\n", "bt", "echo @@end\\n", "kill")
		bt := between(out, "@@bt", "@@end")
		assert.Regexp(t, `(?m)^#0\s+.*!double twice<double>\(double\) \(`, bt)
		assert.Regexp(t, `(?m)^#1\s+.*!ns::Widget::poke\(int\) const \(`, bt)
		assert.NotContains(t, bt, "?poke@")
		if t.Failed() {
			t.Logf("gdb:\n%s", out)
		}
	})
	t.Run("lldb-mingw", func(t *testing.T) {
		exe := progs["mingw"]
		twice := mustResolve(t, exe, "twice<double>")
		script := writeScript(t, "rspstub_lldb.py", monitor.LLDBScript)
		stub := testkit.StartStub(t, exe)
		out := testkit.LLDB(t, exe, stub.Addr, "command script import "+script,
			fmt.Sprintf("breakpoint set --address %#x", twice), "continue", "rspstub-bt", "kill")
		assert.Regexp(t, `(?m)^00 .*!double twice<double>\(double\) `, out)
		assert.Regexp(t, `(?m)^01 .*!ns::Widget::poke\(int\) const\+0x`, out)
		if t.Failed() {
			t.Logf("lldb:\n%s", out)
		}
	})
}
