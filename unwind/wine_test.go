package unwind

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var execCommand = exec.Command

// lookTool finds a build tool (testkit's tool policy).
func lookTool(t *testing.T, names ...string) string {
	t.Helper()
	return testkit.RequireToolAny(t, names...)
}

func run(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// fixture is one build of testdata/walk.c with testdata/rare.S.
type fixture struct {
	name string
	exe  string
}

// buildFixtures builds walk.exe with mingw gcc -O0 and -O2 and with clang's
// mingw target, into dir. rare.S is always assembled by clang.
func buildFixtures(t *testing.T, dir string) []fixture {
	t.Helper()
	clang := lookTool(t, "clang")
	gcc := lookTool(t, "x86_64-w64-mingw32-gcc")
	src, _ := filepath.Abs("testdata/walk.c")
	asm, _ := filepath.Abs("testdata/rare.S")
	rare := filepath.Join(dir, "rare.o")
	run(t, dir, nil, clang, "--target=x86_64-w64-mingw32", "-c", asm, "-o", rare)
	libgcc := strings.TrimSpace(string(run(t, dir, nil, gcc, "-print-libgcc-file-name")))
	var fs []fixture
	for _, b := range []struct {
		name string
		cmd  string
		args []string
	}{
		{"gcc-O0", gcc, []string{"-O0"}},
		{"gcc-O2", gcc, []string{"-O2"}},
		{"clang-mingw-O2", clang, []string{"--target=x86_64-w64-mingw32", "-fuse-ld=lld", "-O2", "-L" + filepath.Dir(libgcc)}},
	} {
		exe := filepath.Join(dir, "walk-"+b.name+".exe")
		args := append(b.args, "-o", exe, src, rare, "-Wl,--stack,0x1000000", "-lpsapi")
		run(t, dir, nil, b.cmd, args...)
		fs = append(fs, fixture{b.name, exe})
	}
	return fs
}

// The fixtures are built once per test binary run, into a folder TestMain
// removes.
var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixtureList []fixture
	fixtureSkip string
)

func sharedFixtures(t *testing.T) (string, []fixture) {
	t.Helper()
	fixtureOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rspstub-unwind-")
		if err != nil {
			fixtureSkip = err.Error()
			return
		}
		fixtureDir = dir
		// Build under a throwaway subtest-like runner so a missing tool
		// is remembered for every caller.
		ok := t.Run("build", func(t *testing.T) { fixtureList = buildFixtures(t, dir) })
		if !ok || fixtureList == nil {
			fixtureSkip = "fixtures could not be built (see the build subtest)"
		}
	})
	if fixtureSkip != "" {
		testkit.Missing(t, "%s", fixtureSkip)
	}
	return fixtureDir, fixtureList
}

// wineEnv is the environment of the shared Wine prefix (in fixtureDir),
// created by the first wine run; wineBin is set once a test found wine64.
var wineBin string

func sharedWine(t *testing.T) (string, []string) {
	t.Helper()
	wine := lookTool(t, "wine64", "/usr/lib/wine/wine64")
	dir, _ := sharedFixtures(t)
	wineBin = wine
	return wine, wineEnv(dir)
}

func wineEnv(dir string) []string {
	return []string{"WINEPREFIX=" + filepath.Join(dir, "wineprefix"), "WINEDEBUG=-all", "DISPLAY="}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		if wineBin != "" {
			// Stop the prefix's wineserver, which outlives the programs.
			stopWineserver(wineBin, wineEnv(fixtureDir))
		}
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

// TestBuiltImagesDecode decodes every function of the built fixtures,
// checks the rare codes are really there, and compares the decoding with
// llvm-readobj; it also builds testdata/msvc.c with clang's MSVC target.
func TestBuiltImagesDecode(t *testing.T) {
	dir, fixtures := sharedFixtures(t)
	clang := lookTool(t, "clang")
	src, _ := filepath.Abs("testdata/msvc.c")
	msvc := filepath.Join(dir, "msvc.exe")
	run(t, dir, nil, clang, "--target=x86_64-pc-windows-msvc", "-fuse-ld=lld", "-O2", "-nostdlib",
		"-Wl,-entry:start", "-Wl,-subsystem:console", "-o", msvc, src)
	readobj := lookTool(t, "llvm-readobj")
	compared := 0
	for _, exe := range append([]string{msvc}, fixtureExes(fixtures)...) {
		mod, b, err := mapPE(exe)
		require.NoError(t, err)
		m := &testkit.Memory{}
		m.Map(mod.Base, b)
		img, err := ReadImage(m, mod)
		require.NoError(t, err)
		out, err := execCommand(readobj, "--unwind", exe).Output()
		if err != nil {
			// llvm-readobj 14 aborts ("stack smashing detected") on the
			// version 2 UNWIND_INFO of rare.S; our decoder is checked
			// against the Wine oracles there instead. On an image without
			// version 2 the failure is the oracle's, and an error.
			assert.True(t, hasVersion2(m, img), "%s: llvm-readobj failed (%v) on an image without version 2 UNWIND_INFO", filepath.Base(exe), err)
			t.Logf("%s: llvm-readobj failed (%v) on version 2 UNWIND_INFO: comparison skipped", filepath.Base(exe), err)
			continue
		}
		ref := parseReadobj(out)
		n := 0
		for _, fn := range img.Functions {
			info, err := img.UnwindInfo(m, fn.UnwindData)
			if !assert.NoError(t, err, filepath.Base(exe)) {
				continue
			}
			assert.Equal(t, ref[mod.Base+uint64(fn.UnwindData)], ourRendering(info), "%s function %#x: ours vs llvm-readobj", filepath.Base(exe), fn.BeginAddress)
			n++
		}
		t.Logf("%s: %d functions agree with llvm-readobj", filepath.Base(exe), n)
		compared += n
	}
	if compared == 0 {
		// The oracle compared nothing: under RSPSTUB_REQUIRE_TOOLS=1 that
		// is a failure, not a log line.
		testkit.Missing(t, "llvm-readobj compared no function of the built images")
	}
	for _, fx := range fixtures {
		mod, b, err := mapPE(fx.exe)
		require.NoError(t, err)
		m := &fakeMem{}
		m.Map(mod.Base, b)
		img, err := ReadImage(m, mod)
		require.NoError(t, err)
		var cs corpusStats
		cs.decodeAll(m, img)
		if len(cs.errs) != 0 {
			t.Errorf("%s: decode errors %v %q", fx.name, cs.errs, cs.examples)
		}
		for _, op := range []int{UWOP_PUSH_NONVOL, UWOP_ALLOC_LARGE, UWOP_ALLOC_SMALL, UWOP_SET_FPREG,
			UWOP_SAVE_NONVOL, UWOP_SAVE_NONVOL_FAR, UWOP_SAVE_XMM128, UWOP_SAVE_XMM128_FAR, UWOP_PUSH_MACHFRAME} {
			if cs.codes[op] == 0 {
				t.Errorf("%s: no %s in the image", fx.name, opNames[op])
			}
		}
		if cs.v2 != 1 {
			t.Errorf("%s: %d version 2 entries, want 1 (rare_v2)", fx.name, cs.v2)
		}
		if cs.chained < 4 {
			t.Errorf("%s: %d chained entries, want 4", fx.name, cs.chained)
		}
		t.Logf("%s: %d functions, %d chained, codes %v", fx.name, cs.functions, cs.chained, cs.codes)
	}
}

// wineResult is what one run of a fixture under wine64 produced.
type wineResult struct {
	out   []byte // stdout: modules, the reference walk
	stack string // the stack dump file
	trace string // the single-step trace file
}

var (
	wineMu      sync.Mutex
	wineResults = map[string]*wineResult{}
)

// runFixture runs a fixture under wine64 once per test binary run: the
// walk (TestWineOracle) and the trace (TestWineSingleStep) come from the
// same process.
func runFixture(t *testing.T, fx fixture) *wineResult {
	t.Helper()
	wine, env := sharedWine(t)
	wineMu.Lock()
	defer wineMu.Unlock()
	if r, ok := wineResults[fx.name]; ok {
		return r
	}
	dir := filepath.Dir(fx.exe)
	r := &wineResult{stack: fx.exe + ".stack", trace: fx.exe + ".trace"}
	r.out = run(t, dir, env, wine, fx.exe, r.stack, r.trace)
	if !strings.Contains(string(r.out), "TRACED") {
		t.Fatalf("%s under wine: %q", fx.name, r.out)
	}
	wineResults[fx.name] = r
	return r
}

func fixtureExes(fs []fixture) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.exe)
	}
	return out
}

// refFrame is one line of the program's reference walk.
type refFrame struct {
	rip, rsp uint64
	regs     map[arch.Reg]uint64
	xmm6     uint64
	xmm15    uint64
}

var refRegs = []arch.Reg{arch.RBX, arch.RBP, arch.RSI, arch.RDI, arch.R12, arch.R13, arch.R14, arch.R15}

type wineRun struct {
	mods       []Module
	stackStart uint64
	refs       []refFrame
}

func parseWineOutput(out []byte) (wineRun, error) {
	var w wineRun
	sc := bufio.NewScanner(bytes.NewReader(out))
	hex := func(s string) uint64 { v, _ := strconv.ParseUint(s, 16, 64); return v }
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "MOD":
			if len(f) < 4 {
				return w, fmt.Errorf("bad line %q", sc.Text())
			}
			w.mods = append(w.mods, Module{Name: strings.Join(f[3:], " "), Base: hex(f[1]), Size: hex(f[2])})
		case "STACK":
			w.stackStart = hex(f[1])
		case "REF":
			if len(f) != 13 {
				return w, fmt.Errorf("bad line %q", sc.Text())
			}
			r := refFrame{rip: hex(f[1]), rsp: hex(f[2]), regs: map[arch.Reg]uint64{}, xmm6: hex(f[11]), xmm15: hex(f[12])}
			for i, reg := range refRegs {
				r.regs[reg] = hex(f[3+i])
			}
			w.refs = append(w.refs, r)
		case "ERROR":
			return w, fmt.Errorf("program: %s", sc.Text())
		}
	}
	if len(w.refs) == 0 {
		return w, fmt.Errorf("no reference frames in %q", out)
	}
	return w, nil
}

// TestWineOracle runs each fixture under wine64. The program walks its own
// stack with RtlLookupFunctionEntry + RtlVirtualUnwind and saves the stack
// bytes; our walk over those bytes and the same images must give the same
// frames (PC, SP) and the same nonvolatile registers.
func TestWineOracle(t *testing.T) {
	if testing.Short() {
		t.Skip("wine oracle is slow; skipped with -short")
	}
	if _, err := os.Stat(wineDir); err != nil {
		testkit.Missing(t, "Wine PE DLLs not installed (%s)", wineDir)
	}
	_, fixtures := sharedFixtures(t)
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			res := runFixture(t, fx)
			w, err := parseWineOutput(res.out)
			require.NoError(t, err)
			stk, err := os.ReadFile(res.stack)
			require.NoError(t, err)
			m := &fakeMem{}
			m.Map(w.stackStart, stk)
			var mods []Module
			for _, mod := range w.mods {
				path := fx.exe
				if !strings.HasSuffix(strings.ToLower(mod.Name), ".exe") {
					base := mod.Name[strings.LastIndex(mod.Name, `\`)+1:]
					path = filepath.Join(wineDir, strings.ToLower(base))
				}
				fm, b, err := mapPE(path)
				if err != nil {
					t.Logf("module %s: %v", mod.Name, err)
					continue
				}
				if uint64(len(b)) != mod.Size {
					t.Logf("module %s: size %#x in memory, %#x from %s", mod.Name, mod.Size, len(b), path)
				}
				m.Map(mod.Base, b)
				mods = append(mods, Module{Name: filepath.Base(fm.Name), Base: mod.Base, Size: uint64(len(b))})
			}
			u := New(m, mods)

			r0 := w.refs[0]
			var ctx Context
			ctx.Set(arch.RIP, r0.rip)
			ctx.Set(arch.RSP, r0.rsp)
			for reg, v := range r0.regs {
				ctx.Set(reg, v)
			}
			ctx.SetXMM(6, Uint128{Lo: r0.xmm6})
			ctx.SetXMM(15, Uint128{Lo: r0.xmm15})
			st := u.Walk(ctx, WalkOptions{})

			checked := 0
			for i, ref := range w.refs {
				if i >= len(st.Frames) {
					t.Fatalf("our walk has %d frames (stopped: %v, %v), the reference %d", len(st.Frames), st.Reason, st.Err, len(w.refs))
				}
				f := st.Frames[i]
				if f.PC != ref.rip || f.SP != ref.rsp {
					t.Fatalf("frame %d: pc %#x sp %#x, reference pc %#x sp %#x", i, f.PC, f.SP, ref.rip, ref.rsp)
				}
				for _, reg := range refRegs {
					v, ok := f.Regs.Get(reg)
					if !ok {
						t.Errorf("frame %d: %v unknown, reference %#x", i, reg, ref.regs[reg])
					} else if v != ref.regs[reg] {
						t.Errorf("frame %d: %v = %#x, reference %#x", i, reg, v, ref.regs[reg])
					}
					checked++
				}
				for x, want := range map[int]uint64{6: ref.xmm6, 15: ref.xmm15} {
					if v, ok := f.Regs.GetXMM(x); ok && v.Lo != want {
						t.Errorf("frame %d: xmm%d = %#x, reference %#x", i, x, v.Lo, want)
					}
				}
			}
			if len(st.Frames) != len(w.refs) || st.Reason != StopZeroReturn {
				t.Errorf("our walk: %d frames, %v (%v); reference %d frames ending at a zero return address",
					len(st.Frames), st.Reason, st.Err, len(w.refs))
			}
			var trusts []string
			for _, f := range st.Frames {
				loc := fmt.Sprintf("%#x", f.PC)
				if f.Module != nil {
					loc = fmt.Sprintf("%s+%#x", f.Module.Name, f.PC-f.Module.Base)
				}
				trusts = append(trusts, loc+"/"+f.Trust.String())
			}
			t.Logf("%s: %d frames agree with Wine's RtlVirtualUnwind (%d register values): %s",
				fx.name, len(w.refs), checked, strings.Join(trusts, " "))
		})
	}
}

// hasVersion2 reports whether any function of img has a version 2
// UNWIND_INFO (the ones llvm-readobj 14 cannot print).
func hasVersion2(m Memory, img *Image) bool {
	for _, fn := range img.Functions {
		if info, err := img.UnwindInfo(m, fn.UnwindData); err == nil && info.Version == 2 {
			return true
		}
	}
	return false
}
