package monitor_test

import (
	"github.com/stretchr/testify/require"

	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/unwind"
	"github.com/rspstub/rspstub/unwind/dwarf"
)

// TestUnwinderSetting: a MinGW image has both .pdata and .debug_frame for
// its functions. Under each setting "monitor bt" gives the same frames;
// the trust says which data found each: with "cfi", every frame unwound
// from a function of the image (which has CFI) is "cfi", the ones
// unwound from the synthesized system DLLs (no CFI) are "pdata".
func TestUnwinderSetting(t *testing.T) {
	for _, b := range []struct {
		flags []string
		stops []string
	}{
		// -O2 without -g: the program's functions have no CFI (only the
		// CRT's have), so "cfi" falls back to .pdata for them.
		{[]string{"-O0", "-g"}, []string{"d", "d+4", "c+8"}},
		{[]string{"-O2"}, []string{"d"}},
	} {
		flags := b.flags
		exe := buildDemo(t, testkit.MinGW, flags...)
		file, err := os.ReadFile(exe)
		require.NoError(t, err)
		secs, err := dwarf.PESections(file)
		require.NoError(t, err)
		finder, err := secs.Finder()
		require.NoError(t, err)
		// hasCFI says whether the image's own CFI covers frame f's PC.
		hasCFI := func(f *monitor.Frame) bool {
			if f.Module == nil || f.Module.Name != "demo.exe" {
				return false
			}
			pc := f.PC - f.Module.Base + secs.ImageBase
			if f.Trust != unwind.TrustContext {
				pc--
			}
			_, err := finder.Lookup(pc)
			return err == nil
		}
		for _, stop := range b.stops {
			tg := stopAt(t, exe, stop, true)
			want := wantStack
			if stop[0] == 'c' {
				want = wantStack[1:]
			}
			var ref *monitor.Backtrace
			for _, set := range []string{"auto", "pdata", "cfi"} {
				if out := monitorCmd(t, tg, "set unwinder "+set); out != "unwinder: "+set+"\n" {
					t.Errorf("set unwinder %s: %q", set, out)
				}
				if out := monitorCmd(t, tg, "show unwinder"); !strings.HasPrefix(out, "unwinder: "+set+" ") {
					t.Errorf("show unwinder: %q", out)
				}
				bt, err := tg.Commands().Backtrace(monitor.BacktraceOptions{})
				require.NoError(t, err)
				if len(bt.Frames) != len(want) || bt.Reason != unwind.StopZeroReturn {
					t.Fatalf("%v %s, unwinder %s:\n%s", flags, stop, set, monitorCmd(t, tg, "bt"))
				}
				cfi := 0
				for i, f := range bt.Frames {
					if w := want[i].mod + "!" + want[i].sym; f.Loc.String() != w && !strings.HasPrefix(f.Loc.String(), w+"+") && !strings.HasPrefix(f.Loc.String(), w+" ") {
						t.Errorf("%v %s, unwinder %s: frame %d is %s, want %s", flags, stop, set, i, f.Loc, w)
					}
					if ref != nil && (f.PC != ref.Frames[i].PC || f.SP != ref.Frames[i].SP) {
						t.Errorf("%v %s, unwinder %s: frame %d pc %#x sp %#x, auto gave %#x %#x", flags, stop, set, i,
							f.PC, f.SP, ref.Frames[i].PC, ref.Frames[i].SP)
					}
					if i == 0 {
						continue
					}
					wantTrust := unwind.TrustPDATA
					if set == "cfi" && hasCFI(&bt.Frames[i-1]) {
						wantTrust = unwind.TrustCFI
					}
					if f.Trust != wantTrust {
						t.Errorf("%v %s, unwinder %s: frame %d (%s) trust %v, want %v", flags, stop, set, i, f.Loc.Symbol, f.Trust, wantTrust)
					}
					if f.Trust == unwind.TrustCFI {
						cfi++
					}
				}
				t.Logf("%v %s, unwinder %s: %d of %d frames found by CFI", flags, stop, set, cfi, len(bt.Frames))
				if set == "cfi" && cfi < 2 {
					t.Errorf("%v %s: only %d frames from CFI", flags, stop, cfi)
				}
				if ref == nil {
					ref = bt
				}
			}
			if v := monitorCmd(t, tg, "verify-unwind"); !strings.HasPrefix(v, "OK:") {
				t.Errorf("verify-unwind with unwinder cfi:\n%s", v)
			}
			var out strings.Builder
			if err := tg.Monitor("set unwinder dwarf", &out); err == nil || !strings.Contains(err.Error(), "auto, pdata or cfi") {
				t.Errorf("set unwinder dwarf: %v", err)
			}
		}
	}
}

// TestUnwinderSettingThroughGDB: the setting from rspstub serve's
// --unwinder flag and from gdb's "monitor set unwinder".
func TestUnwinderSettingThroughGDB(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := buildDemo(t, testkit.MinGW, "-O0", "-g")
	stub := testkit.StartStub(t, "--unwinder", "pdata", exe)
	out := testkit.GDB(t, gdb, exe, stub.Addr,
		"break d", "continue",
		"echo @@show\\n", "monitor show unwinder",
		"echo @@set\\n", "monitor set unwinder cfi",
		"echo @@bt\\n", "monitor bt",
		"echo @@set\\n", "monitor set unwinder auto",
		"echo @@bt\\n", "monitor bt",
		"kill")
	t.Logf("gdb:\n%s", out)
	parts := strings.Split(out, "@@")
	if len(parts) != 6 {
		t.Fatalf("gdb output has %d parts", len(parts))
	}
	if !strings.HasPrefix(parts[1], "show\nunwinder: pdata ") {
		t.Errorf("--unwinder pdata: %q", parts[1])
	}
	if !strings.HasPrefix(parts[2], "set\nunwinder: cfi") {
		t.Errorf("monitor set unwinder cfi: %q", parts[2])
	}
	// Trust of frames 1-6 (unwound from demo's functions) and of the
	// two system frames.
	trust := regexp.MustCompile(`(?m)^0([1-8]) .* (cfi \(builtin\)|\S+)\s*$`)
	for k, want := range map[int]string{3: "cfi", 5: "pdata"} {
		checkBTText(t, "gdb", parts[k])
		got := trust.FindAllStringSubmatch(parts[k], -1)
		if len(got) != 8 {
			t.Errorf("%d frames with a trust in:\n%s", len(got), parts[k])
			continue
		}
		for _, g := range got {
			w := want
			if g[1] == "8" {
				w = "pdata" // unwound from KERNEL32, which has no CFI
			}
			if g[2] != w {
				t.Errorf("frame %s: trust %q, want %q", g[1], g[2], w)
			}
		}
	}
}
