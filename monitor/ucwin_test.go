package monitor_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/debuggee/debuggeetest"
	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/guest/winproc"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/rsp"
	"github.com/rspstub/rspstub/unwind"
)

// demoBuilds are the seed scenario built by each toolchain.
var demoBuilds = []struct {
	name  string
	tc    testkit.Toolchain
	flags []string
}{
	{"gcc-O0", testkit.MinGW, []string{"-O0", "-g"}},
	{"gcc-O2", testkit.MinGW, []string{"-O2", "-g"}},
	{"clang-O0", testkit.ClangMinGW, []string{"-O0", "-g"}},
	{"clang-O2", testkit.ClangMinGW, []string{"-O2", "-g"}},
}

// stopAtStart loads exe in Unicorn, stopped at its first instruction.
func stopAtStart(t *testing.T, exe string) *ucwin.Target {
	t.Helper()
	tg, err := ucwin.New(ucwin.Config{Program: exe})
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	return tg
}

// stopAt starts exe in Unicorn and runs it to the first hit of sym.
func stopAt(t *testing.T, exe, sym string, shadow bool) *ucwin.Target {
	t.Helper()
	tg, _ := runTo(t, ucwin.Config{Program: exe, ShadowStack: shadow}, sym)
	return tg
}

// runTo starts cfg's program (its output collected in the buffer
// returned) and runs it to the first hit of sym.
func runTo(t *testing.T, cfg ucwin.Config, sym string) (*ucwin.Target, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	cfg.Stdout, cfg.Stderr = &out, &out
	tg, err := ucwin.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	addr, err := debuggeetest.View(tg).Commands().Resolve(sym)
	require.NoError(t, err)
	require.NoError(t, tg.InsertBreakpoint(rsp.BreakSoftware, addr, 1))
	st, err := tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
	require.NoError(t, err, "%v: run to %s; output %q", cfg.Args, sym, out.String())
	require.Equal(t, rsp.StopSWBreak, st.Kind, "%v: stop %+v, want the breakpoint at %s (%#x); output %q", cfg.Args, st, sym, addr, out.String())
	return tg, &out
}

func monitorCmd(t *testing.T, tg *ucwin.Target, cmd string) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, debuggeetest.View(tg).Monitor(cmd, &out), "monitor %s\n%s", cmd, out.String())
	return out.String()
}

var wantStack = []struct{ mod, sym string }{
	{"demo", "d"}, {"demo", "c"}, {"demo", "b"}, {"demo", "a"}, {"demo", "main"},
	{"demo", "__tmainCRTStartup"}, {"demo", "mainCRTStartup"},
	{"KERNEL32", "BaseThreadInitThunk"}, {"ntdll", "RtlUserThreadStart"},
}

// buildDemo builds the seed scenario and copies it to demo.exe in a
// fresh folder, so that module names read "demo".
func buildDemo(t *testing.T, tc testkit.Toolchain, flags ...string) string {
	t.Helper()
	src := testkit.BuildPE(t, "examples/demo/demo.c", tc, flags...)
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	exe := filepath.Join(t.TempDir(), "demo.exe")
	require.NoError(t, os.WriteFile(exe, b, 0o755))
	return exe
}

// frameJSON is the documented schema of one frame of "bt -json", with
// typed fields (unknown ones absent or null).
type frameJSON struct {
	Index  int               `json:"index"`
	PC     string            `json:"pc"`
	SP     string            `json:"sp"`
	Module *string           `json:"module"`
	RVA    *string           `json:"rva"`
	Symbol *string           `json:"symbol"`
	Offset *string           `json:"offset"`
	File   *string           `json:"file"`
	Line   *int              `json:"line"`
	Trust  string            `json:"trust"`
	Regs   map[string]string `json:"regs"`
	Saved  map[string]string `json:"saved"`
}

func hexValue(t *testing.T, what, s string) uint64 {
	t.Helper()
	h, ok := strings.CutPrefix(s, "0x")
	v, err := strconv.ParseUint(h, 16, 64)
	require.True(t, ok && err == nil && h != "", "%s = %q: not a 0x hex string", what, s)
	return v
}

// checkFramesJSON validates frames against the schema and the seed stack:
// order, modules, symbols, hex strings, and saved-register slots that lie
// in the stack and hold the register's value.
func checkFramesJSON(t *testing.T, frames []frameJSON, mem interface {
	ReadMemory(uint64, []byte) (int, error)
}, stackLimit, stackBase uint64) {
	t.Helper()
	require.Len(t, frames, len(wantStack), "frames")
	var prevSP uint64
	for i, f := range frames {
		w := wantStack[i]
		wantMod := w.mod + ".dll"
		if w.mod == "demo" {
			wantMod = "demo.exe"
		}
		assert.Equal(t, i, f.Index, "frame %d: index", i)
		assert.Equal(t, wantMod+"!"+w.sym, deref(f.Module)+"!"+deref(f.Symbol), "frame %d: module!symbol", i)
		pc, sp := hexValue(t, "pc", f.PC), hexValue(t, "sp", f.SP)
		assert.NotNil(t, f.RVA, "frame %d: rva", i)
		assert.NotNil(t, f.Offset, "frame %d: offset", i)
		assert.True(t, sp > prevSP && sp >= stackLimit && sp < stackBase, "frame %d: sp %#x not increasing inside the stack [%#x, %#x)", i, sp, stackLimit, stackBase)
		prevSP = sp
		assert.Equal(t, pc, hexValue(t, "regs.rip", f.Regs["rip"]), "frame %d: regs rip disagrees with pc", i)
		assert.Equal(t, sp, hexValue(t, "regs.rsp", f.Regs["rsp"]), "frame %d: regs rsp disagrees with sp", i)
		wantTrust := "pdata"
		if i == 0 {
			wantTrust = "context"
		}
		assert.Equal(t, wantTrust, f.Trust, "frame %d: trust", i)
		if i > 0 {
			for _, vol := range []string{"rax", "rcx", "rdx", "r8", "r9", "r10", "r11"} {
				assert.NotContains(t, f.Regs, vol, "frame %d: volatile register reported", i)
			}
			assert.Contains(t, f.Saved, "rip", "frame %d: no saved rip (return address slot)", i)
		}
		for reg, a := range f.Saved {
			addr := hexValue(t, "saved."+reg, a)
			assert.True(t, addr >= stackLimit && addr < stackBase, "frame %d: %s saved at %#x, outside the stack", i, reg, addr)
			if strings.HasPrefix(reg, "xmm") {
				continue
			}
			var b [8]byte
			n, _ := mem.ReadMemory(addr, b[:])
			require.Equal(t, 8, n, "frame %d: read %#x", i, addr)
			assert.Equal(t, hexValue(t, "regs."+reg, f.Regs[reg]), binary.LittleEndian.Uint64(b[:]), "frame %d: %s and its slot at %#x", i, reg, addr)
		}
	}
	f := frames[0]
	if assert.NotNil(t, f.File, "frame 0: file") && assert.NotNil(t, f.Line, "frame 0: line") {
		assert.True(t, strings.HasSuffix(*f.File, "demo.c"), "frame 0 file %s, want demo.c", *f.File)
		assert.True(t, *f.Line >= 9 && *f.Line <= 14, "frame 0 line %d, want one of d's", *f.Line)
	}
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestBacktraceAtD(t *testing.T) {
	for _, b := range demoBuilds {
		t.Run(b.name, func(t *testing.T) {
			exe := buildDemo(t, b.tc, b.flags...)
			tg := stopAt(t, exe, "d", true)
			p := tg.Process()

			text := monitorCmd(t, tg, "bt")
			t.Logf("monitor bt:\n%s", text)
			lines := strings.Split(strings.TrimSpace(text), "\n")
			require.Len(t, lines, len(wantStack)+2, "lines: want a header, %d frames and an end line", len(wantStack))
			for i, w := range wantStack {
				re := fmt.Sprintf(`^%02x [0-9a-f]{8}`+"`"+`[0-9a-f]{8}  [0-9a-f]{8}`+"`"+`[0-9a-f]{8}  %s!%s(\+0x[0-9a-f]+)? `, i, w.mod, w.sym)
				assert.Regexp(t, re, lines[i+1], "line %d: want frame %s!%s", i+1, w.mod, w.sym)
			}
			assert.Contains(t, lines[len(lines)-1], "end of stack (zero return address)", "last line %q", lines[len(lines)-1])

			var doc struct {
				Frames []frameJSON `json:"frames"`
			}
			js := monitorCmd(t, tg, "bt -json")
			require.NoError(t, json.Unmarshal([]byte(js), &doc), "bt -json\n%s", js)
			checkFramesJSON(t, doc.Frames, tg, p.StackLimit(), p.StackBase())

			// -full: every "saved at" address lies in the stack and holds the value.
			full := monitorCmd(t, tg, "bt -full")
			savedRE := regexp.MustCompile(`(?m)^   (\w+) +([0-9a-f]{16})  saved at ([0-9a-f]{8})` + "`" + `([0-9a-f]{8})$`)
			ms := savedRE.FindAllStringSubmatch(full, -1)
			assert.NotEmpty(t, ms, "bt -full shows no saved register:\n%s", full)
			for _, m := range ms {
				v, _ := strconv.ParseUint(m[2], 16, 64)
				at, _ := strconv.ParseUint(m[3]+m[4], 16, 64)
				var b [8]byte
				tg.ReadMemory(at, b[:])
				assert.True(t, at >= p.StackLimit() && at < p.StackBase(), "bt -full: %s saved at %#x, outside the stack", m[1], at)
				assert.Equal(t, v, binary.LittleEndian.Uint64(b[:]), "bt -full: %s saved at %#x", m[1], at)
			}

			assert.Regexp(t, `^OK: the unwinder agrees with the shadow call stack on all 8 calls`, monitorCmd(t, tg, "verify-unwind"), "verify-unwind")
			assert.Regexp(t, `^frame 2: demo!b\+`, monitorCmd(t, tg, "frame 2"), "frame 2")
			assert.Regexp(t, `arg1 x +rcx +0x4 +exact`, monitorCmd(t, tg, "args"), "args at d's entry (x = 4)")
		})
	}
}

// TestOtherCommandsOnGuest runs the informational commands on a real
// guest and checks a landmark of each.
func TestOtherCommandsOnGuest(t *testing.T) {
	exe := buildDemo(t, testkit.MinGW, "-O0", "-g")
	tg := stopAt(t, exe, "d", false)
	p := tg.Process()
	for _, tc := range []struct{ cmd, want string }{
		{"help", "verify-unwind"},
		{"modules", "KERNEL32.dll"},
		{"modules -json", `"name":"demo.exe"`},
		{"teb", fmt.Sprintf("StackBase                  %#x", p.StackBase())},
		{"peb", "ImageBaseAddress           0x140000000"},
		{"memmap", "demo.exe .text"},
		{"unwind-info d", "UWOP_PUSH_NONVOL rbp"},
		{"unwind-info KERNEL32!BaseThreadInitThunk", "UWOP_ALLOC_SMALL 0x28 bytes"},
		{"args 1", "arg1 x       rcx  0x3 "}, // an int: the slot's upper half is masked
	} {
		assert.Contains(t, monitorCmd(t, tg, tc.cmd), tc.want, "monitor %s", tc.cmd)
	}
	var out bytes.Buffer
	assert.ErrorContains(t, debuggeetest.View(tg).Monitor("verify-unwind", &out), "--shadow-stack", "verify-unwind without a shadow stack")
	assert.ErrorContains(t, debuggeetest.View(tg).Monitor("unwind-info msvcrt!fputc", &out), "no unwind data", "unwind-info on a leaf stub")
}

// TestVerifyUnwindThroughCallback: a comparator called back by the
// emulated qsort has no call instruction behind it; verify-unwind notes
// that frame and still checks every real call.
func TestVerifyUnwindThroughCallback(t *testing.T) {
	exe := testkit.BuildPE(t, "guest/testdata/chain.c", testkit.MinGW, "-O0", "-g")
	tg := stopAt(t, exe, "cmp+4", true)
	out := monitorCmd(t, tg, "verify-unwind")
	assert.Regexp(t, `^OK: the unwinder agrees with the shadow call stack on all 5 calls`, out, "verify-unwind")
	assert.Contains(t, out, "returns into msvcrt!qsort+0x5: a callback from emulated API code", "verify-unwind")
}

// TestAfterExit: once the program has exited, commands that need the
// thread say so.
func TestAfterExit(t *testing.T) {
	exe := buildDemo(t, testkit.MinGW, "-O0")
	tg := stopAtStart(t, exe)
	st, err := tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
	require.NoError(t, err, "run to the end")
	require.Equal(t, rsp.StopExited, st.Kind, "stop %+v", st)
	var out bytes.Buffer
	assert.ErrorContains(t, debuggeetest.View(tg).Monitor("bt", &out), "the program has exited", "bt after exit")
	assert.NoError(t, debuggeetest.View(tg).Monitor("modules", &out), "modules after exit")
}

// TestBacktraceInChkstk: inside ___chkstk_ms (no .pdata entry, no CFI,
// two pushes) the leaf rule of a strict walk reads a pushed register as
// the return address; the default walk recovers the caller with the
// built-in CFI and agrees with the shadow call stack.
func TestBacktraceInChkstk(t *testing.T) {
	exe := testkit.BuildPE(t, "monitor/testdata/chkstk.c", testkit.MinGW, "-O0", "-g")
	tg := stopAt(t, exe, "___chkstk_ms+2", true)
	bt, err := debuggeetest.View(tg).Commands().Backtrace(monitor.BacktraceOptions{})
	require.NoError(t, err)
	n := len(bt.Frames)
	require.GreaterOrEqual(t, n, 4, "default walk:\n%s", monitorCmd(t, tg, "bt"))
	assert.Equal(t, "RtlUserThreadStart", bt.Frames[n-1].Loc.Symbol, "default walk's last frame:\n%s", monitorCmd(t, tg, "bt"))
	assert.Equal(t, unwind.TrustCFIBuiltin, bt.Frames[1].Trust, "frame 1 trust")
	assert.Contains(t, monitorCmd(t, tg, "bt"), "cfi (builtin)", "bt does not show the builtin CFI")
	assert.Regexp(t, `^OK:`, monitorCmd(t, tg, "verify-unwind"), "verify-unwind")
	strict, err := debuggeetest.View(tg).Commands().Backtrace(monitor.BacktraceOptions{Strict: true})
	require.NoError(t, err)
	if len(strict.Frames) > 1 {
		assert.Empty(t, strict.Frames[1].Loc.Module, "strict walk found a real caller in ___chkstk_ms: %+v", strict.Frames[1].Loc)
	}
}

// TestLoaderWalkMatchesUnicornGuest: winproc's walk over the real
// guest's memory, from its gs_base, finds exactly the modules the
// Unicorn guest loaded (names, bases, sizes, in load order).
func TestLoaderWalkMatchesUnicornGuest(t *testing.T) {
	exe := buildDemo(t, testkit.MinGW, "-O0", "-g")
	tg := stopAt(t, exe, "d", false)
	var gs, cs [8]byte
	require.NoError(t, tg.ReadRegister(1, tg.Description().Lookup("gs_base"), gs[:]))
	require.NoError(t, tg.ReadRegister(1, tg.Description().Lookup("cs"), cs[:4]))
	teb, err := winproc.FindTEB(tg, winproc.Regs{CS: binary.LittleEndian.Uint64(cs[:]), GSBase: binary.LittleEndian.Uint64(gs[:])})
	require.NoError(t, err, "FindTEB")
	require.Equal(t, tg.Process().TEB(), teb, "FindTEB")
	p, err := winproc.Walk(tg, teb)
	require.NoError(t, err)
	assert.Empty(t, p.Problems, "problems")
	want := tg.Process().Modules()
	require.GreaterOrEqual(t, len(want), 3, "the guest's modules")
	require.Len(t, p.Modules, len(want), "walk found %+v", p.Modules)
	for i, w := range want {
		g := p.Modules[i]
		assert.Equal(t, [2]string{w.Name, w.Path}, [2]string{g.Name, g.Path}, "module %d: name and path", i)
		assert.Equal(t, [2]uint64{w.Base, w.Size}, [2]uint64{g.Base, g.Size}, "module %d: base and size", i)
	}
	t.Logf("the walk found the guest's %d modules", len(p.Modules))
	assert.Equal(t, want[0].Base, p.ImageBase, "PEB.ImageBaseAddress")
	// monitor peb prints the same list.
	out := monitorCmd(t, tg, "peb")
	for _, w := range want {
		assert.Contains(t, out, fmt.Sprintf("%#-10x %s\n", uint32(w.Size), w.Name), "monitor peb lacks %s:\n%s", w.Name, out)
	}
}
