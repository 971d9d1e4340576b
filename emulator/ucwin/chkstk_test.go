package ucwin

import (
	"github.com/stretchr/testify/require"

	"fmt"
	"io"
	"sort"
	"testing"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/unwind"
	"github.com/rspstub/rspstub/unwind/cfi"
)

// chkstkInstructions are the offsets of ___chkstk_ms's instructions
// (libgcc, Debian 12; unwind/cfi/builtin.go lists its bytes).
var chkstkInstructions = []uint64{0x00, 0x01, 0x02, 0x08, 0x0d, 0x0f, 0x16, 0x1a, 0x20, 0x26, 0x28, 0x2b, 0x2f, 0x30, 0x31}

// TestChkstkBuiltinCFI single-steps the chkstk program (a 20000-byte
// frame) and, at every instruction executed inside libgcc's
// ___chkstk_ms, which has neither .pdata nor CFI, walks the stack: the
// caller's frame must come from the built-in CFI (not the stack scan),
// and every frame's return address and stack pointer must equal the
// emulator's shadow call stack.
func TestChkstkBuiltinCFI(t *testing.T) {
	builds := []struct {
		name  string
		tc    testkit.Toolchain
		flags []string
	}{
		{"mingw-O0", testkit.MinGW, []string{"-O0", "-g"}},
		{"mingw-O2", testkit.MinGW, []string{"-O2"}},
		{"clang-mingw-O0", testkit.ClangMinGW, []string{"-O0", "-g"}},
		{"clang-mingw-O2", testkit.ClangMinGW, []string{"-O2"}},
	}
	for _, b := range builds {
		t.Run(b.name, func(t *testing.T) {
			exe := testkit.BuildPE(t, "monitor/testdata/chkstk.c", b.tc, b.flags...)
			checkChkstk(t, exe)
		})
	}
}

func checkChkstk(t *testing.T, exe string) {
	tg, err := New(Config{Program: exe, ShadowStack: true, Stdout: io.Discard, Stderr: io.Discard})
	require.NoError(t, err)
	defer tg.Close()
	start, err := tg.Commands().Resolve("___chkstk_ms")
	require.NoError(t, err)
	u := unwind.New(tg, unwindModules(tg))
	opt := unwind.WalkOptions{MaxFrames: 256, Scan: true, CFI: cfi.New(func(m *unwind.Module) ([]byte, error) {
		return tg.Process().ModuleImage(m.Name)
	})}
	if _, found, _ := u.LookupFunctionEntry(start); found {
		t.Fatalf("___chkstk_ms at %#x has a .pdata entry: the test needs one without", start)
	}
	var st unwind.Stack
	seen := map[uint64]int{}
	calls, checked, bad := 0, 0, 0
	stepAll(t, tg, u, 2_000_000, func(pc uint64) {
		if pc < start || pc >= start+0x32 {
			return
		}
		if pc == start {
			calls++
		}
		seen[pc-start]++
		checked++
		u.WalkInto(&st, frameContext(t, tg), opt)
		// The shadow stack's live calls, innermost first, without the
		// continuations of calls made by emulated API code.
		sp, _ := tg.Machine().Reg(arch.RSP)
		shadow := tg.Machine().ShadowStack()
		var want []unwind.Frame
		for i := len(shadow) - 1; i >= 0; i-- {
			if shadow[i].SP < sp || tg.mw.isTrap(shadow[i].ReturnAddress) {
				continue
			}
			want = append(want, unwind.Frame{PC: shadow[i].ReturnAddress, SP: shadow[i].SP + 8})
		}
		var got []unwind.Frame
		for _, f := range st.Frames[1:] {
			if !tg.mw.isTrap(f.PC) {
				got = append(got, f)
			}
		}
		msg := ""
		switch {
		case len(st.Frames) < 2:
			msg = fmt.Sprintf("no caller frame (%v %v)", st.Reason, st.Err)
		case st.Frames[1].Trust != unwind.TrustCFIBuiltin:
			msg = fmt.Sprintf("caller frame found by %v, want %v", st.Frames[1].Trust, unwind.TrustCFIBuiltin)
		case len(got) != len(want):
			msg = fmt.Sprintf("%d frames, shadow stack has %d", len(got), len(want))
		default:
			for i := range want {
				if got[i].PC != want[i].PC || got[i].SP != want[i].SP {
					msg = fmt.Sprintf("frame %d: pc %#x sp %#x, shadow pc %#x sp %#x",
						i+1, got[i].PC, got[i].SP, want[i].PC, want[i].SP)
					break
				}
			}
		}
		if msg != "" {
			bad++
			if bad <= 5 {
				t.Errorf("___chkstk_ms+%#x (call %d): %s", pc-start, calls, msg)
			}
		}
	})
	var offs []string
	for _, o := range chkstkInstructions {
		if seen[o] == 0 {
			t.Errorf("instruction ___chkstk_ms+%#x never executed", o)
		}
	}
	for o, n := range seen {
		offs = append(offs, fmt.Sprintf("+%#x:%d", o, n))
	}
	sort.Strings(offs)
	t.Logf("%d calls of ___chkstk_ms, %d stops inside it checked (%v), %d wrong", calls, checked, offs, bad)
}
