package ucwin

import (
	"github.com/stretchr/testify/require"

	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
	"github.com/rspstub/rspstub/unwind"
	"github.com/rspstub/rspstub/unwind/cfi"
)

// frameContext is frame 0 of the guest's thread for the unwinder.
func frameContext(t *testing.T, tg *Target) unwind.Context {
	t.Helper()
	var c unicorn.Context
	require.NoError(t, tg.Machine().ReadContext(&c))
	var ctx unwind.Context
	for r := arch.RAX; r <= arch.R15; r++ {
		ctx.Set(r, c.GPR[r])
	}
	ctx.Set(arch.RIP, c.RIP)
	return ctx
}

func unwindModules(tg *Target) []unwind.Module {
	var mods []unwind.Module
	for _, m := range tg.Process().Modules() {
		mods = append(mods, unwind.Module{Name: m.Name, Base: m.Base, Size: m.Size})
	}
	return mods
}

// shadowResult counts what one run compared.
type shadowResult struct {
	steps, checked, mismatches int
	// noEntry counts the mismatches inside functions without a .pdata
	// entry (libgcc's ___chkstk_ms), where the DWARF CFI fallback must
	// take over from the leaf rule; cfi counts positions where it did.
	noEntry, cfi, scan int
	firstMismatches    []string
	byFunction         map[string]int // mismatches by the function frame 0 was in
}

// checkShadow runs exe instruction by instruction and, before every
// instruction, compares the unwinder's chain of return addresses with the
// emulator's shadow call stack (the ground truth: every call pushed, every
// ret popped).
//
// Calls the Go side of an emulated API makes into guest code (callbacks
// such as _initterm's) push their return address without a `call`
// instruction, so the shadow stack cannot see them: unwound frames whose
// return address is an API stub's continuation are skipped in the
// comparison, not counted as agreeing or not.
func checkShadow(t *testing.T, exe string, maxSteps int) shadowResult {
	tg, err := New(Config{Program: exe, ShadowStack: true, Stdout: io.Discard, Stderr: io.Discard})
	require.NoError(t, err)
	defer tg.Close()
	u := unwind.New(tg, unwindModules(tg))
	opt := unwind.WalkOptions{MaxFrames: 256, Scan: true, CFI: cfi.New(func(m *unwind.Module) ([]byte, error) {
		return tg.Process().ModuleImage(m.Name)
	})}
	res := shadowResult{byFunction: map[string]int{}}
	var st unwind.Stack
	res.steps = stepAll(t, tg, u, maxSteps, func(pc uint64) {
		if tg.mw.isTrap(pc) {
			return // an API entry: the next step performs the call in Go
		}
		shadow := tg.Machine().ShadowStack()
		u.WalkInto(&st, frameContext(t, tg), opt)
		// Unwound return addresses, innermost first, without the
		// continuations of Go-made calls.
		var got []uint64
		for _, f := range st.Frames[1:] {
			if tg.mw.isTrap(f.PC) {
				continue
			}
			got = append(got, f.PC)
		}
		// An API call that Go just returned from (RIP and RSP set without
		// a ret) leaves its entry until the next block start: entries
		// whose slot lies below RSP are dead, the emulator's own rule.
		rsp, _ := tg.Machine().Reg(arch.RSP)
		var want []uint64
		for i := len(shadow) - 1; i >= 0; i-- {
			if shadow[i].SP < rsp || tg.mw.isTrap(shadow[i].ReturnAddress) {
				continue
			}
			want = append(want, shadow[i].ReturnAddress)
		}
		res.checked++
		if len(st.Frames) > 1 {
			switch st.Frames[1].Trust {
			case unwind.TrustCFI:
				res.cfi++
			case unwind.TrustScan:
				res.scan++
			}
		}
		if !equalChains(got, want) {
			res.mismatches++
			if _, found, err := u.LookupFunctionEntry(pc); !found && err == nil {
				res.noEntry++
			}
			fn := symbolAt(u, pc)
			res.byFunction[fn]++
			if len(res.firstMismatches) < 5 {
				res.firstMismatches = append(res.firstMismatches,
					fmt.Sprintf("pc %#x (%s): unwound %x (stopped: %v %v), shadow %x",
						pc, fn, got, st.Reason, st.Err, want))
			}
		}
	})
	return res
}

// stepAll single-steps tg until the program exits or maxSteps were taken,
// keeping u's module list current, and calls fn with the PC before each
// instruction. It returns the number of steps.
func stepAll(t *testing.T, tg *Target, u *unwind.Unwinder, maxSteps int, fn func(pc uint64)) int {
	step := []rsp.ResumeAction{{Thread: rsp.AllThreads, Step: true}}
	nmods := len(tg.Process().Modules())
	steps := 0
	for ; steps < maxSteps; steps++ {
		stop, err := tg.Resume(step)
		require.NoError(t, err)
		if stop.Kind == rsp.StopExited {
			break
		}
		if stop.Kind != rsp.StopSignal || stop.Signal != rsp.SIGTRAP {
			t.Fatalf("step %d: unexpected stop %+v", steps, stop)
		}
		if n := len(tg.Process().Modules()); n != nmods {
			u.SetModules(unwindModules(tg))
			nmods = n
		}
		pc, _ := tg.Machine().Reg(arch.RIP)
		fn(pc)
	}
	return steps
}

func equalChains(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// symbolAt names the module and function start of pc, for reports.
func symbolAt(u *unwind.Unwinder, pc uint64) string {
	m, ok := u.Module(pc)
	if !ok {
		return fmt.Sprintf("%#x", pc)
	}
	fe, found, _ := u.LookupFunctionEntry(pc)
	if !found {
		return fmt.Sprintf("%s+%#x (no .pdata entry)", m.Name, pc-m.Base)
	}
	return fmt.Sprintf("%s+%#x", m.Name, uint64(fe.BeginAddress))
}

// TestUnwinderAgainstShadowStack is issue 4's ground truth: at every
// instruction the demo program executes, our unwinder's return-address
// chain equals the emulator's shadow call stack.
func TestUnwinderAgainstShadowStack(t *testing.T) {
	builds := []struct {
		name, src string
		tc        testkit.Toolchain
		flags     []string
		wantCFI   bool
	}{
		{"mingw-O0", "examples/demo/demo.c", testkit.MinGW, []string{"-O0", "-g"}, false},
		{"mingw-O2", "examples/demo/demo.c", testkit.MinGW, []string{"-O2", "-g"}, false},
		{"clang-mingw-O0", "examples/demo/demo.c", testkit.ClangMinGW, []string{"-O0", "-g"}, false},
		// A function with DWARF CFI and no .pdata entry.
		{"cfi-only", "emulator/ucwin/testdata/cfionly.c", testkit.MinGW, []string{"-O1"}, true},
		// Epilogs ending in jmp rel32, jmp rel8, jmp [rip+x] and rep ret.
		{"epilogs", "emulator/ucwin/testdata/epilogs.c", testkit.MinGW, []string{"-O1"}, false},
	}
	for _, b := range builds {
		t.Run(b.name, func(t *testing.T) {
			exe := testkit.BuildPE(t, b.src, b.tc, b.flags...)
			res := checkShadow(t, exe, 2_000_000)
			if b.wantCFI && res.cfi == 0 {
				t.Errorf("the DWARF CFI fallback never unwound a frame")
			}
			t.Logf("%s: %d instructions stepped, %d positions checked (frame 0 unwound by DWARF CFI at %d, by a stack scan at %d), %d mismatches (%d in functions without .pdata)",
				b.name, res.steps, res.checked, res.cfi, res.scan, res.mismatches, res.noEntry)
			if res.checked == 0 {
				t.Fatal("nothing was checked")
			}
			if res.mismatches > 0 {
				var fns []string
				for fn, n := range res.byFunction {
					fns = append(fns, fmt.Sprintf("%s: %d", fn, n))
				}
				t.Errorf("%d mismatches, by function: %s\nfirst ones:\n%s", res.mismatches,
					strings.Join(fns, ", "), strings.Join(res.firstMismatches, "\n"))
			}
		})
	}
}
