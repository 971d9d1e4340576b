package monitor_test

import (
	"github.com/stretchr/testify/require"

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
	addr, err := tg.Commands().Resolve(sym)
	require.NoError(t, err)
	require.NoError(t, tg.InsertBreakpoint(rsp.BreakSoftware, addr, 1))
	st, err := tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
	if err != nil || st.Kind != rsp.StopSWBreak {
		t.Fatalf("%v: stop %+v %v, want the breakpoint at %s (%#x); output %q", cfg.Args, st, err, sym, addr, out.String())
	}
	return tg, &out
}

func monitorCmd(t *testing.T, tg *ucwin.Target, cmd string) string {
	t.Helper()
	var out bytes.Buffer
	if err := tg.Monitor(cmd, &out); err != nil {
		t.Fatalf("monitor %s: %v\n%s", cmd, err, out.String())
	}
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
	if !ok || err != nil || h == "" {
		t.Fatalf("%s = %q: not a 0x hex string", what, s)
	}
	return v
}

// checkFramesJSON validates frames against the schema and the seed stack:
// order, modules, symbols, hex strings, and saved-register slots that lie
// in the stack and hold the register's value.
func checkFramesJSON(t *testing.T, frames []frameJSON, mem interface {
	ReadMemory(uint64, []byte) (int, error)
}, stackLimit, stackBase uint64) {
	t.Helper()
	if len(frames) != len(wantStack) {
		t.Fatalf("%d frames, want %d", len(frames), len(wantStack))
	}
	var prevSP uint64
	for i, f := range frames {
		w := wantStack[i]
		wantMod := w.mod + ".dll"
		if w.mod == "demo" {
			wantMod = "demo.exe"
		}
		if f.Index != i || f.Module == nil || *f.Module != wantMod || f.Symbol == nil || *f.Symbol != w.sym {
			t.Errorf("frame %d: index %d module %v symbol %v, want %s!%s", i, f.Index, deref(f.Module), deref(f.Symbol), wantMod, w.sym)
		}
		pc, sp := hexValue(t, "pc", f.PC), hexValue(t, "sp", f.SP)
		if f.RVA == nil || f.Offset == nil {
			t.Errorf("frame %d: no rva/offset", i)
		}
		if sp <= prevSP || sp < stackLimit || sp >= stackBase {
			t.Errorf("frame %d: sp %#x not increasing inside the stack [%#x, %#x)", i, sp, stackLimit, stackBase)
		}
		prevSP = sp
		if hexValue(t, "regs.rip", f.Regs["rip"]) != pc || hexValue(t, "regs.rsp", f.Regs["rsp"]) != sp {
			t.Errorf("frame %d: regs rip/rsp %v disagree with pc/sp", i, f.Regs)
		}
		wantTrust := "pdata"
		if i == 0 {
			wantTrust = "context"
		}
		if f.Trust != wantTrust {
			t.Errorf("frame %d: trust %q, want %q", i, f.Trust, wantTrust)
		}
		if i > 0 {
			for _, vol := range []string{"rax", "rcx", "rdx", "r8", "r9", "r10", "r11"} {
				if _, ok := f.Regs[vol]; ok {
					t.Errorf("frame %d: volatile %s reported", i, vol)
				}
			}
			if _, ok := f.Saved["rip"]; !ok {
				t.Errorf("frame %d: no saved rip (return address slot)", i)
			}
		}
		for reg, a := range f.Saved {
			addr := hexValue(t, "saved."+reg, a)
			if addr < stackLimit || addr >= stackBase {
				t.Errorf("frame %d: %s saved at %#x, outside the stack", i, reg, addr)
			}
			if strings.HasPrefix(reg, "xmm") {
				continue
			}
			var b [8]byte
			if n, _ := mem.ReadMemory(addr, b[:]); n != 8 {
				t.Fatalf("frame %d: read %#x", i, addr)
			}
			if got, want := binary.LittleEndian.Uint64(b[:]), hexValue(t, "regs."+reg, f.Regs[reg]); got != want {
				t.Errorf("frame %d: %s = %#x but its slot %#x holds %#x", i, reg, want, addr, got)
			}
		}
	}
	if f := frames[0]; f.File == nil || !strings.HasSuffix(*f.File, "demo.c") || f.Line == nil || *f.Line < 9 || *f.Line > 14 {
		t.Errorf("frame 0 file:line %v:%v, want demo.c in d", deref(f.File), f.Line)
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
			if len(lines) != len(wantStack)+2 {
				t.Fatalf("%d lines, want a header, %d frames and an end line", len(lines), len(wantStack))
			}
			for i, w := range wantStack {
				re := regexp.MustCompile(fmt.Sprintf(`^%02x [0-9a-f]{8}`+"`"+`[0-9a-f]{8}  [0-9a-f]{8}`+"`"+`[0-9a-f]{8}  %s!%s(\+0x[0-9a-f]+)? `, i, w.mod, w.sym))
				if !re.MatchString(lines[i+1]) {
					t.Errorf("line %d = %q, want frame %s!%s", i+1, lines[i+1], w.mod, w.sym)
				}
			}
			if !strings.Contains(lines[len(lines)-1], "end of stack (zero return address)") {
				t.Errorf("last line %q", lines[len(lines)-1])
			}

			var doc struct {
				Frames []frameJSON `json:"frames"`
			}
			js := monitorCmd(t, tg, "bt -json")
			if err := json.Unmarshal([]byte(js), &doc); err != nil {
				t.Fatalf("bt -json: %v\n%s", err, js)
			}
			checkFramesJSON(t, doc.Frames, tg, p.StackLimit(), p.StackBase())

			// -full: every "saved at" address lies in the stack and holds the value.
			full := monitorCmd(t, tg, "bt -full")
			savedRE := regexp.MustCompile(`(?m)^   (\w+) +([0-9a-f]{16})  saved at ([0-9a-f]{8})` + "`" + `([0-9a-f]{8})$`)
			ms := savedRE.FindAllStringSubmatch(full, -1)
			if len(ms) == 0 {
				t.Errorf("bt -full shows no saved register:\n%s", full)
			}
			for _, m := range ms {
				v, _ := strconv.ParseUint(m[2], 16, 64)
				at, _ := strconv.ParseUint(m[3]+m[4], 16, 64)
				var b [8]byte
				tg.ReadMemory(at, b[:])
				if at < p.StackLimit() || at >= p.StackBase() || binary.LittleEndian.Uint64(b[:]) != v {
					t.Errorf("bt -full: %s = %#x saved at %#x: outside the stack or holding %#x", m[1], v, at, binary.LittleEndian.Uint64(b[:]))
				}
			}

			if v := monitorCmd(t, tg, "verify-unwind"); !strings.HasPrefix(v, "OK: the unwinder agrees with the shadow call stack on all 8 calls") {
				t.Errorf("verify-unwind:\n%s", v)
			}
			if f := monitorCmd(t, tg, "frame 2"); !strings.HasPrefix(f, "frame 2: demo!b+") {
				t.Errorf("frame 2:\n%s", f)
			}
			if a := monitorCmd(t, tg, "args"); !regexp.MustCompile(`arg1 x +rcx +0x4 +exact`).MatchString(a) {
				t.Errorf("args at d's entry (x = 4):\n%s", a)
			}
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
		if out := monitorCmd(t, tg, tc.cmd); !strings.Contains(out, tc.want) {
			t.Errorf("monitor %s: no %q in\n%s", tc.cmd, tc.want, out)
		}
	}
	var out bytes.Buffer
	if err := tg.Monitor("verify-unwind", &out); err == nil || !strings.Contains(err.Error(), "--shadow-stack") {
		t.Errorf("verify-unwind without a shadow stack: %v", err)
	}
	if err := tg.Monitor("unwind-info msvcrt!fputc", &out); err == nil || !strings.Contains(err.Error(), "no unwind data") {
		t.Errorf("unwind-info on a leaf stub: %v", err)
	}
}

// TestVerifyUnwindThroughCallback: a comparator called back by the
// emulated qsort has no call instruction behind it; verify-unwind notes
// that frame and still checks every real call.
func TestVerifyUnwindThroughCallback(t *testing.T) {
	exe := testkit.BuildPE(t, "guest/testdata/chain.c", testkit.MinGW, "-O0", "-g")
	tg := stopAt(t, exe, "cmp+4", true)
	out := monitorCmd(t, tg, "verify-unwind")
	if !strings.HasPrefix(out, "OK: the unwinder agrees with the shadow call stack on all 5 calls") ||
		!strings.Contains(out, "returns into msvcrt!qsort+0x5: a callback from emulated API code") {
		t.Errorf("verify-unwind:\n%s", out)
	}
}

// TestAfterExit: once the program has exited, commands that need the
// thread say so.
func TestAfterExit(t *testing.T) {
	exe := buildDemo(t, testkit.MinGW, "-O0")
	tg := stopAtStart(t, exe)
	st, err := tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
	if err != nil || st.Kind != rsp.StopExited {
		t.Fatalf("stop %+v, %v", st, err)
	}
	var out bytes.Buffer
	if err := tg.Monitor("bt", &out); err == nil || !strings.Contains(err.Error(), "the program has exited") {
		t.Errorf("bt after exit: %v", err)
	}
	if err := tg.Monitor("modules", &out); err != nil {
		t.Errorf("modules after exit: %v", err)
	}
}

// TestBacktraceInChkstk: inside ___chkstk_ms (no .pdata entry, no CFI,
// two pushes) the leaf rule of a strict walk reads a pushed register as
// the return address; the default walk recovers the caller with the
// built-in CFI and agrees with the shadow call stack.
func TestBacktraceInChkstk(t *testing.T) {
	exe := testkit.BuildPE(t, "monitor/testdata/chkstk.c", testkit.MinGW, "-O0", "-g")
	tg := stopAt(t, exe, "___chkstk_ms+2", true)
	bt, err := tg.Commands().Backtrace(monitor.BacktraceOptions{})
	require.NoError(t, err)
	if n := len(bt.Frames); n < 4 || bt.Frames[n-1].Loc.Symbol != "RtlUserThreadStart" {
		t.Errorf("default walk:\n%s", monitorCmd(t, tg, "bt"))
	}
	if f := bt.Frames[1]; f.Trust != unwind.TrustCFIBuiltin {
		t.Errorf("frame 1 trust %v, want %v", f.Trust, unwind.TrustCFIBuiltin)
	}
	if out := monitorCmd(t, tg, "bt"); !strings.Contains(out, "cfi (builtin)") {
		t.Errorf("bt does not show the builtin CFI:\n%s", out)
	}
	if v := monitorCmd(t, tg, "verify-unwind"); !strings.HasPrefix(v, "OK:") {
		t.Errorf("verify-unwind:\n%s", v)
	}
	strict, err := tg.Commands().Backtrace(monitor.BacktraceOptions{Strict: true})
	require.NoError(t, err)
	if len(strict.Frames) > 1 && strict.Frames[1].Loc.Module != "" {
		t.Errorf("strict walk found a real caller in ___chkstk_ms: %+v", strict.Frames[1].Loc)
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
	if err != nil || teb != tg.Process().TEB() {
		t.Fatalf("FindTEB = %#x, %v; want %#x", teb, err, tg.Process().TEB())
	}
	p, err := winproc.Walk(tg, teb)
	require.NoError(t, err)
	if len(p.Problems) > 0 {
		t.Errorf("problems: %v", p.Problems)
	}
	want := tg.Process().Modules()
	if len(p.Modules) != len(want) || len(want) < 3 {
		t.Fatalf("walk found %d modules, the guest has %d: %+v", len(p.Modules), len(want), p.Modules)
	}
	for i, w := range want {
		g := p.Modules[i]
		if g.Name != w.Name || g.Base != w.Base || g.Size != w.Size || g.Path != w.Path {
			t.Errorf("module %d: walk %+v, guest %s %s %#x %#x", i, g, w.Name, w.Path, w.Base, w.Size)
		}
	}
	t.Logf("the walk found the guest's %d modules", len(p.Modules))
	if p.ImageBase != want[0].Base {
		t.Errorf("PEB.ImageBaseAddress %#x, want %#x", p.ImageBase, want[0].Base)
	}
	// monitor peb prints the same list.
	out := monitorCmd(t, tg, "peb")
	for _, w := range want {
		if !strings.Contains(out, fmt.Sprintf("%#-10x %s\n", uint32(w.Size), w.Name)) {
			t.Errorf("monitor peb lacks %s:\n%s", w.Name, out)
		}
	}
}
